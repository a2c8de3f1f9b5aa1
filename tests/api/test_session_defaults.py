"""A workspace's session defaults (model, language, endpointing, two-pass final model): set by its owner
through REST or the dashboard, read at every start, below the client's own choice and above the server's.

The REST and dashboard rules through Django's test clients; a session that names nothing, through
the real server (a child process) over the v1 and Deepgram WebSockets; file jobs through the same
parse. Real models (tiny.en, Whisper base) and PostgreSQL.
"""

import json

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils.http import urlencode
from rest_framework.test import APIClient
from websockets.sync.client import connect

from accounts.models import Membership, Tenant
from api.deepgram import options as deepgram_options
from api.openai import forms as openai_forms
from bench.evaluation import character_error_rate, concatenate_clips, load_manifest
from tests.support.audio import to_s16
from tests.support.servers import gateway_server
from tests.support.tenants import make_tenant
from transcription import file_jobs

SETTINGS = "/api/v1/settings"
CHINESE = {"default_model": "base", "default_language": "zh", "default_endpointing_ms": 500}


@pytest.fixture(autouse=True)
def base_installed(whisper_base):
    return whisper_base


def key_client(raw_key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return client


def member(tenant: Tenant, username: str, role: str = Membership.Role.MEMBER):
    user = get_user_model().objects.create_user(username=username, password="pw-123456-long")
    Membership.objects.create(user=user, tenant=tenant, role=role)
    return user


def logged_in(user, client_class=APIClient, **kwargs):
    client = client_class(**kwargs)
    client.force_login(user)
    return client


# --- REST ------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_owners_key_sets_defaults_that_members_read_and_another_tenant_does_not_see(tenant_a, tenant_b):
    fresh = key_client(tenant_a.raw_key).get(SETTINGS)
    assert fresh.status_code == 200
    assert fresh.json() == {
        "default_model": None,
        "default_language": None,
        "default_endpointing_ms": None,
        "default_final_model": None,
        "effective": {"model": "tiny.en", "language": "en", "endpointing_ms": 800, "final_model": ""},
    }
    changed = key_client(tenant_a.raw_key).patch(SETTINGS, CHINESE, format="json")
    assert changed.status_code == 200, changed.json()
    effective = {"model": "base", "language": "zh", "endpointing_ms": 500, "final_model": ""}
    assert changed.json() == {**CHINESE, "default_final_model": None, "effective": effective}
    seen = logged_in(member(tenant_a.tenant, "mo")).get(SETTINGS).json()
    assert seen == changed.json()
    other = key_client(tenant_b.raw_key).get(SETTINGS).json()
    assert other["default_model"] is None and other["effective"]["model"] == "tiny.en"
    only_language = key_client(tenant_a.raw_key).patch(SETTINGS, {"default_model": None}, format="json").json()
    assert only_language["default_language"] == "zh" and only_language["effective"]["model"] == "base"  # zh's model


@pytest.mark.django_db
def test_a_member_without_the_owner_role_cannot_change_them_and_an_owner_can(tenant_a):
    response = logged_in(member(tenant_a.tenant, "mia")).patch(SETTINGS, CHINESE, format="json")
    assert response.status_code == 403 and "owner" in response.json()["detail"]
    assert Tenant.objects.get(pk=tenant_a.tenant.pk).default_model == ""
    owner = logged_in(member(tenant_a.tenant, "olive", Membership.Role.OWNER))
    assert owner.patch(SETTINGS, CHINESE, format="json").status_code == 200
    assert Tenant.objects.get(pk=tenant_a.tenant.pk).default_model == "base"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"default_model": "large-v9"}, "Unknown model 'large-v9'"),
        ({"default_model": "tiny.en", "default_language": "zh"}, "'zh' is not available with model 'tiny.en'"),
        ({"default_language": "klingon"}, "'klingon' is not available"),
        ({"default_endpointing_ms": 50}, "between 200 and 10000"),
        ({"default_endpointing_ms": "soon"}, "valid integer"),
        ({"model": "base"}, "Unknown field(s): model"),
        ({"default_final_model": "large-v9"}, "Final model: Unknown model 'large-v9'; available: "),
        ({"default_final_model": "tiny.en", "default_language": "zh"}, "'tiny.en' cannot decode the finals"),
        ({"default_final_model": ["base"]}, "Not a valid string"),
        ({"default_final_model": "b" * 51}, "no more than 50 characters"),
    ],
)
def test_values_the_server_cannot_honour_are_refused_with_400_and_nothing_changes(tenant_a, body, fragment):
    response = key_client(tenant_a.raw_key).patch(SETTINGS, body, format="json")
    assert response.status_code == 400
    assert fragment in json.dumps(response.json()), response.json()
    tenant = Tenant.objects.get(pk=tenant_a.tenant.pk)
    stored = (tenant.default_model, tenant.default_language, tenant.default_endpointing_ms, tenant.default_final_model)
    assert stored == ("", "", None, "")


@pytest.mark.django_db
def test_the_final_model_round_trips_stays_when_other_fields_change_and_is_the_tenants_alone(tenant_a, tenant_b):
    owner = key_client(tenant_a.raw_key)
    body = owner.patch(SETTINGS, {"default_final_model": "base"}, format="json").json()
    assert body["default_final_model"] == "base"
    assert body["effective"] == {"model": "tiny.en", "language": "en", "endpointing_ms": 800, "final_model": "base"}
    assert owner.get(SETTINGS).json() == body
    assert Tenant.objects.get(pk=tenant_a.tenant.pk).default_final_model == "base"
    other = key_client(tenant_b.raw_key).get(SETTINGS).json()
    assert (other["default_final_model"], other["effective"]["final_model"]) == (None, "")

    chinese = owner.patch(SETTINGS, {"default_language": "zh"}, format="json").json()
    assert chinese["default_final_model"] == "base"  # base is zh's model too: one pass
    assert (chinese["effective"]["model"], chinese["effective"]["final_model"]) == ("base", "")
    cleared = owner.patch(SETTINGS, {"default_final_model": None}, format="json").json()
    assert cleared["default_final_model"] is None and cleared["default_language"] == "zh"
    assert Tenant.objects.get(pk=tenant_a.tenant.pk).default_final_model == ""


@pytest.mark.django_db
def test_the_schema_describes_the_settings_endpoint():
    schema = APIClient().get("/api/schema/?format=json").json()
    operations = schema["paths"]["/api/v1/settings"]
    assert {"get", "patch"} <= set(operations)
    components = schema["components"]["schemas"]
    assert "more CPU cost" in components["TenantSettings"]["properties"]["default_final_model"]["description"]
    assert "final_model" in components["EffectiveSession"]["properties"]


# --- the dashboard -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_owner_sets_defaults_on_the_dashboard_with_the_csrf_token_and_a_member_cannot(tenant_a):
    owner = logged_in(member(tenant_a.tenant, "ona", Membership.Role.OWNER), Client, enforce_csrf_checks=True)
    page = owner.get(reverse("dashboard"))
    assert page.status_code == 200 and b'action="/dashboard/defaults/"' in page.content
    token = page.cookies["csrftoken"].value
    form = {"default_model": "", "default_language": "zh", "default_endpointing_ms": "1200"}
    assert owner.post(reverse("session_defaults"), form).status_code == 403  # no CSRF token
    saved = owner.post(reverse("session_defaults"), {**form, "csrfmiddlewaretoken": token})
    assert saved.status_code == 302
    tenant = Tenant.objects.get(pk=tenant_a.tenant.pk)
    assert (tenant.default_model, tenant.default_language, tenant.default_endpointing_ms) == ("", "zh", 1200)
    shown = owner.get(reverse("dashboard")).content.decode()
    assert 'id="effective-model">base<' in shown and "Chinese (Mandarin)" in shown

    wrong = {"default_model": "tiny.en", "default_language": "zh", "csrfmiddlewaretoken": token}
    refused = owner.post(reverse("session_defaults"), wrong)
    assert refused.status_code == 400 and "not available with model" in refused.content.decode()
    assert Tenant.objects.get(pk=tenant_a.tenant.pk).default_model == ""

    plain = logged_in(member(tenant_a.tenant, "max"), Client)
    assert plain.post(reverse("session_defaults"), {"default_language": "en"}).status_code == 403
    assert b'action="/dashboard/defaults/"' not in plain.get(reverse("dashboard")).content
    assert Tenant.objects.get(pk=tenant_a.tenant.pk).default_language == "zh"


@pytest.mark.django_db
def test_the_owner_chooses_a_final_model_on_the_dashboard_beside_the_model(tenant_a, tenant_b):
    owner = logged_in(member(tenant_a.tenant, "oda", Membership.Role.OWNER), Client)
    page = owner.get(reverse("dashboard")).content.decode()
    start = page.index('name="default_final_model"')
    select = page[start : page.index("</select>", start)]
    assert '<option value="" selected>None (one pass)</option>' in select
    assert '<option value="base">base</option>' in select and '"tiny.en"' in select
    assert (
        page.index('name="default_model"')
        < page.index('name="default_final_model"')
        < page.index('name="default_language"')
    )
    assert "more accurate model, at more CPU cost" in page
    assert 'id="effective-final-model"' not in page

    form = {"default_model": "", "default_language": "", "default_endpointing_ms": "", "default_final_model": "base"}
    assert owner.post(reverse("session_defaults"), form).status_code == 302
    assert Tenant.objects.get(pk=tenant_a.tenant.pk).default_final_model == "base"
    shown = owner.get(reverse("dashboard")).content.decode()
    assert 'id="effective-final-model">base<' in shown and '<option value="base" selected>base</option>' in shown
    plain = logged_in(member(tenant_a.tenant, "mel"), Client).get(reverse("dashboard")).content.decode()
    assert "Final model: base." in plain

    refused = owner.post(reverse("session_defaults"), {**form, "default_final_model": "large-v9"})
    assert refused.status_code == 400 and "Select a valid choice" in refused.content.decode()
    mismatched = owner.post(
        reverse("session_defaults"), {**form, "default_language": "zh", "default_final_model": "tiny.en"}
    )
    assert mismatched.status_code == 400 and "cannot decode the finals" in mismatched.content.decode()
    assert Tenant.objects.get(pk=tenant_a.tenant.pk).default_final_model == "base"
    assert Tenant.objects.get(pk=tenant_b.tenant.pk).default_final_model == ""
    other = logged_in(member(tenant_b.tenant, "ben", Membership.Role.OWNER), Client).get(reverse("dashboard"))
    assert 'id="effective-final-model"' not in other.content.decode()

    cleared = owner.post(reverse("session_defaults"), {**form, "default_final_model": ""})
    assert cleared.status_code == 302 and Tenant.objects.get(pk=tenant_a.tenant.pk).default_final_model == ""


# --- files: the same parse --------------------------------------------------------------------------


@pytest.mark.django_db
def test_file_jobs_take_the_tenants_defaults_and_the_languages_model_in_every_file_api(
    tenant_a, tenant_b, eval_dir, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path / "media"
    wav = (eval_dir / "zh" / "asr_example.wav").read_bytes()

    def job(tenant, options):
        upload = SimpleUploadedFile("zh.wav", wav)
        return file_jobs.job_create(tenant_id=tenant.tenant.pk, api_key_id=None, upload=upload, options=options)

    chinese = job(tenant_a, {"language": "zh"})  # REST's form: no model named
    assert (chinese.options["model"], chinese.session.engine, chinese.session.language) == ("base", "base", "zh")
    openai = openai_forms.transcription_request(_form(model="whisper-1", language="zh")).options
    assert job(tenant_a, openai).options["model"] == "base"
    deepgram = deepgram_options.parse(_form(model="nova-3", language="zh")).options
    deepgram_job = job(tenant_a, deepgram).options
    assert (deepgram_job["model"], deepgram_job["word_timestamps"]) == ("base", True)

    key_client(tenant_a.raw_key).patch(SETTINGS, CHINESE, format="json")
    mine, theirs = job(tenant_a, {}).options, job(tenant_b, {}).options
    assert (mine["model"], mine["language"], mine["endpointing_ms"]) == ("base", "zh", 500)
    assert (theirs["model"], theirs["language"], theirs["endpointing_ms"]) == ("tiny.en", "en", 800)
    english = job(tenant_a, {"language": "en", "endpointing_ms": 900}).options  # the client's own choice wins
    assert (english["model"], english["language"], english["endpointing_ms"]) == ("base", "en", 900)


@pytest.mark.django_db
def test_file_jobs_take_the_tenants_final_model_above_the_servers_and_skip_one_that_cannot_serve(
    tenant_a, tenant_b, eval_dir, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path / "media"
    wav = (eval_dir / "zh" / "asr_example.wav").read_bytes()

    def options(tenant, asked):
        upload = SimpleUploadedFile("zh.wav", wav)
        job = file_jobs.job_create(tenant_id=tenant.tenant.pk, api_key_id=None, upload=upload, options=asked)
        return job.options["model"], job.options["language"], job.options["final_model"]

    key_client(tenant_a.raw_key).patch(SETTINGS, {"default_final_model": "base"}, format="json")
    assert options(tenant_a, {}) == ("tiny.en", "en", "base")
    assert options(tenant_b, {}) == ("tiny.en", "en", "")

    settings.ASR_FINAL_MODEL = "base"  # the server's, below the tenant's
    changed = key_client(tenant_a.raw_key).patch(SETTINGS, {"default_final_model": "tiny.en"}, format="json")
    assert changed.status_code == 200
    assert options(tenant_a, {"model": "base", "language": "en"}) == ("base", "en", "tiny.en")
    assert options(tenant_b, {"model": "base", "language": "en"}) == ("base", "en", "")  # base's own finals
    assert options(tenant_b, {}) == ("tiny.en", "en", "base")
    assert options(tenant_a, {"language": "zh"}) == ("base", "zh", "")  # tiny.en cannot: skipped, no refusal


def _form(**fields: str):
    from django.http import QueryDict

    return QueryDict(urlencode(fields))


# --- a session that names nothing, through the real server -----------------------------------------


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker):
    with gateway_server(extra_env={"REDIS_URL": ""}) as live:
        yield live


def ready_of(server, raw_key: str, start: dict) -> dict:
    with connect(server.url, additional_headers={"Authorization": f"Bearer {raw_key}"}) as ws:
        ws.send(json.dumps({"type": "start", **start}))
        ready = json.loads(ws.recv(timeout=60))
        ws.send(json.dumps({"type": "stop"}))
        while json.loads(ws.recv(timeout=60))["type"] != "closed":
            pass
    return ready


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_session_that_names_nothing_gets_its_tenants_defaults_in_v1_and_deepgram(server, eval_dir):
    mine, theirs = make_tenant("defaults-mine"), make_tenant("defaults-theirs")
    http = httpx.Client(base_url=server.http_url, headers={"Authorization": f"Bearer {mine.raw_key}"})
    assert http.patch(SETTINGS, json=CHINESE).status_code == 200

    config = ready_of(server, mine.raw_key, {})["config"]
    assert (config["model"], config["language"], config["endpointing_ms"]) == ("base", "zh", 500)
    other = ready_of(server, theirs.raw_key, {})["config"]
    assert (other["model"], other["language"], other["endpointing_ms"]) == ("tiny.en", "en", 800)
    english = ready_of(server, mine.raw_key, {"language": "en"})["config"]
    assert (english["model"], english["language"]) == ("base", "en")  # the client's language, the tenant's model

    entry = next(e for e in load_manifest(eval_dir / "zh") if e.name == "asr_example.wav")
    pcm = to_s16(concatenate_clips([entry], gap_s=0.0, lead_s=0.3, tail_s=1.5).audio)
    url = server.http_url.replace("http", "ws", 1) + "/v1/listen?model=nova-3&encoding=linear16&sample_rate=16000"
    results = []
    with connect(url, additional_headers={"Authorization": f"Token {mine.raw_key}"}) as ws:
        for i in range(0, len(pcm), 3200):
            ws.send(pcm[i : i + 3200])
        ws.send(json.dumps({"type": "CloseStream"}))
        for message in ws:
            data = json.loads(message)
            if data.get("type") == "Results" and data.get("is_final"):
                results.append(data)
    assert results and {r["metadata"]["model_info"]["name"] for r in results} == {"base"}
    text = "".join(r["channel"]["alternatives"][0]["transcript"] for r in results)
    assert character_error_rate([entry.text], [text]) <= 0.2, text


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_stream_gets_its_tenants_final_model_below_its_own_and_never_one_that_cannot_serve_it(server):
    mine, theirs = make_tenant("final-mine"), make_tenant("final-theirs")
    http = httpx.Client(base_url=server.http_url, headers={"Authorization": f"Bearer {mine.raw_key}"})
    assert http.patch(SETTINGS, json={"default_final_model": "base"}).status_code == 200

    def final_of(tenant, start: dict) -> tuple[str, str, str]:
        ready = ready_of(server, tenant.raw_key, start)
        assert ready["type"] == "ready", ready
        return ready["config"]["model"], ready["config"]["language"], ready["config"]["final_model"]

    assert final_of(mine, {}) == ("tiny.en", "en", "base")
    assert final_of(theirs, {}) == ("tiny.en", "en", "")
    asked = {"model": "base", "language": "en", "final_model": "tiny.en"}
    assert final_of(mine, asked) == ("base", "en", "tiny.en")  # the client's own wins

    assert http.patch(SETTINGS, json={"default_final_model": "tiny.en"}).status_code == 200
    assert final_of(mine, {"language": "zh"}) == ("base", "zh", "")  # tiny.en does not speak zh: skipped
    assert final_of(mine, {"model": "base", "language": "en"}) == ("base", "en", "tiny.en")
    assert final_of(theirs, {"model": "base", "language": "en"}) == ("base", "en", "")
