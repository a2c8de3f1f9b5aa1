"""A workspace's session defaults (model, language, endpointing): set by its owner through REST or the
dashboard, read at every start, below the client's own choice and above the server's.

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
        "effective": {"model": "tiny.en", "language": "en", "endpointing_ms": 800},
    }
    changed = key_client(tenant_a.raw_key).patch(SETTINGS, CHINESE, format="json")
    assert changed.status_code == 200, changed.json()
    assert changed.json() == {**CHINESE, "effective": {"model": "base", "language": "zh", "endpointing_ms": 500}}
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
    ],
)
def test_values_the_server_cannot_honour_are_refused_with_400_and_nothing_changes(tenant_a, body, fragment):
    response = key_client(tenant_a.raw_key).patch(SETTINGS, body, format="json")
    assert response.status_code == 400
    assert fragment in json.dumps(response.json()), response.json()
    tenant = Tenant.objects.get(pk=tenant_a.tenant.pk)
    assert (tenant.default_model, tenant.default_language, tenant.default_endpointing_ms) == ("", "", None)


@pytest.mark.django_db
def test_the_schema_describes_the_settings_endpoint():
    schema = APIClient().get("/api/schema/?format=json").json()
    operations = schema["paths"]["/api/v1/settings"]
    assert {"get", "patch"} <= set(operations)


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
