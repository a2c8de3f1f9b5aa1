"""The browser experience in real Chromium against the real server: sign up, record, resume, isolation.

Chromium hears a WAV built from the eval clips as its microphone; the page captures it (Opus from
MediaRecorder by default, 16 kHz frames from an AudioWorklet where a test chooses PCM), streams it
over a token-authenticated WebSocket, and shows partials and finals. Screenshots go to test-artifacts/ (not committed).
"""

import json
import re
import signal
import time
from collections.abc import Iterator

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from playwright.sync_api import Page, sync_playwright
from websockets.sync.client import connect

from accounts import selectors as account_selectors
from accounts import services as account_services
from bench.evaluation import word_error_rate
from tests.support.paths import ARTIFACTS
from tests.support.servers import GatewayServer, gateway_server
from transcription import services as transcription_services
from transcription.models import Segment, Session

from .chromium import build_track, launch

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
PASSWORD = "a long enough passphrase 7"
MAX_WER = 0.15


@pytest.fixture(scope="module", autouse=True)
def orm_beside_playwright() -> Iterator[None]:
    """Playwright's sync API keeps an event loop running in this thread; the ORM calls here are
    still plain blocking calls between browser steps, so allow them."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker) -> Iterator[GatewayServer]:
    with gateway_server() as live:
        yield live


@pytest.fixture(scope="module")
def playwright() -> Iterator:
    with sync_playwright() as p:
        yield p


def http(server: GatewayServer, path: str) -> str:
    return f"http://127.0.0.1:{server.port}{path}"


def make_member(workspace: str, username: str):
    """A workspace and its owner, whose password the live server (default hashers) can check."""
    signup = account_services.account_signup(tenant_name=workspace, username=username, email="", password=PASSWORD)
    hasher = PBKDF2PasswordHasher()
    signup.user.password = hasher.encode(PASSWORD, hasher.salt())
    signup.user.save(update_fields=["password"])
    return signup


def log_in(page: Page, server: GatewayServer, username: str) -> None:
    page.goto(http(server, "/login/"))
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url(re.compile(r".*/record/$"))


def audio_seconds(page: Page) -> float:
    return float(page.get_attribute("#recorder", "data-audio-seconds") or 0)


def wait_until(page: Page, expression: str, timeout_ms: float = 30_000) -> None:
    """Poll a JavaScript expression from here (page.evaluate is not subject to the page's CSP, which
    forbids the eval that Playwright's wait_for_function uses)."""
    deadline = time.monotonic() + timeout_ms / 1000
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise TimeoutError(f"still false after {timeout_ms / 1000:g} s: {expression}")
        page.wait_for_timeout(100)


def wait_for_audio(page: Page, seconds: float) -> None:
    wait_until(page, f"Number(document.getElementById('recorder').dataset.audioSeconds || 0) >= {seconds}", 120_000)


def record(page: Page, server: GatewayServer, duration_s: float, *, endpointing_ms: int = 800) -> None:
    """Start, let the whole track play, stop, and wait until the page says the transcript is saved."""
    page.goto(http(server, "/record/"))
    page.select_option("#endpointing", str(endpointing_ms))
    page.click("#start")
    wait_for_audio(page, duration_s)
    page.click("#stop")
    page.wait_for_selector("#recorder[data-state=done]", timeout=60_000)


def page_finals(page: Page) -> list[dict]:
    return page.eval_on_selector_all(
        "#transcript li.seg.final",
        "els => els.map(e => ({segment: Number(e.dataset.segment), text: e.querySelector('.seg-text').textContent}))",
    )


def stored_texts(session_id: str) -> list[str]:
    return list(Segment.objects.filter(session_id=session_id).order_by("index").values_list("text", flat=True))


def joined(texts: list[str]) -> str:
    return " ".join(t.strip() for t in texts if t.strip())


# --- 1. sign up, see the key once, log out and in -------------------------------------------------


def test_sign_up_shows_the_key_once_then_log_out_and_back_in(server, playwright):
    browser = launch(playwright)
    try:
        page = browser.new_page()
        page.goto(http(server, "/signup/"))
        page.fill("#id_tenant_name", "Browser Co")
        page.fill("#id_username", "grace")
        page.fill("#id_email", "grace@example.com")
        page.fill("#id_password1", "short")
        page.fill("#id_password2", "short")
        page.click("form button[type=submit]")
        assert "too short" in page.inner_text(".field-errors")  # Django's validators, shown on the form

        page.fill("#id_password1", PASSWORD)
        page.fill("#id_password2", PASSWORD)
        page.click("form button[type=submit]")
        raw_key = page.inner_text("#api-key").strip()
        assert "you will not see it again" in page.inner_text("main")
        api_key = account_selectors.api_key_authenticate(raw_key=raw_key)
        assert api_key is not None and api_key.tenant.name == "Browser Co"

        page.click("text=go to the dashboard")
        assert api_key.prefix in page.content() and raw_key not in page.content()
        page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)

        page.click("text=Log out")
        page.wait_for_url(re.compile(r".*/login/$"))
        page.goto(http(server, "/dashboard/"))
        assert "/login/" in page.url

        page.fill("#id_username", "grace")
        page.fill("#id_password", "not the password")
        page.click("form button[type=submit]")
        message = page.inner_text(".notice-error")
        assert "don't match an account" in message and "password is" not in message.lower()

        page.fill("#id_username", "grace")
        page.fill("#id_password", PASSWORD)
        page.click("form button[type=submit]")
        page.wait_for_url(re.compile(r".*/dashboard/$"))
        assert "Browser Co" in page.inner_text("h1")
    finally:
        browser.close()


# --- 2 and 5. record real speech; page, database and transcript page agree; screenshot -----------


def test_recorded_speech_appears_as_finals_that_match_the_references_and_are_stored(
    server, playwright, eval_dir, tmp_path
):
    track = build_track(
        eval_dir, ["goforward.wav", "cards-005.wav", "new-home.wav", "librivox-0930.wav"], tmp_path / "speech.wav"
    )
    signup = make_member("Recorder Inc", "rita")
    browser = launch(playwright, microphone_wav=track.path)
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 820})
        csp_violations: list[str] = []  # the pages run under the server's Content-Security-Policy
        page.on("console", lambda m: csp_violations.append(m.text) if "Content Security Policy" in m.text else None)
        log_in(page, server, "rita")
        page.goto(http(server, "/record/"))
        page.screenshot(path=str(ARTIFACTS / "recording-page-empty.png"))
        page.click("#start")
        page.wait_for_selector("#transcript li.seg.partial", timeout=60_000)  # a partial, shown live
        wait_for_audio(page, track.utterances[2].start_s + 1.5)
        page.screenshot(path=str(ARTIFACTS / "recording-page-live.png"))
        wait_for_audio(page, track.duration_s)
        page.click("#stop")
        page.wait_for_selector("#recorder[data-state=done]", timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / "recording-page.png"))

        finals = page_finals(page)
        assert not csp_violations, csp_violations
        assert int(page.get_attribute("#recorder", "data-partials") or 0) > 0
        assert not page.query_selector_all("#transcript li.seg.partial")  # every partial was superseded
        wer = word_error_rate([joined(track.references)], [joined([f["text"] for f in finals])])
        assert wer <= MAX_WER, (wer, finals)

        session_id = page.get_attribute("#recorder", "data-session-id")
        session = Session.objects.get(pk=session_id)
        assert session.tenant == signup.tenant and session.api_key is None and session.close_reason == "stop"
        assert Session.objects.filter(tenant=signup.tenant).count() == 1
        assert stored_texts(session_id) == [f["text"] for f in finals]
        assert [f["segment"] for f in finals] == list(range(len(finals)))
        assert session.audio_seconds == pytest.approx(track.duration_s, abs=1.0)

        page.click("#done-link")
        page.wait_for_url(re.compile(rf".*/transcripts/{session_id}/$"))
        shown = page.eval_on_selector_all("li.seg .seg-text", "els => els.map(e => e.textContent)")
        assert shown == [f["text"] for f in finals]
        page.screenshot(path=str(ARTIFACTS / "transcript-page.png"), full_page=True)
        txt = page.request.get(http(server, f"/transcripts/{session_id}/download.txt"))
        assert txt.ok and txt.text().splitlines() == [f["text"].strip() for f in finals]
        srt = page.request.get(http(server, f"/transcripts/{session_id}/download.srt")).text()
        assert srt.startswith("1\n00:00:0") and " --> " in srt
        data = page.request.get(http(server, f"/transcripts/{session_id}/download.json")).json()
        assert [s["text"] for s in data["segments"]] == [f["text"] for f in finals]
    finally:
        browser.close()


# --- 3. the connection drops mid-recording; the page resumes the same session ----------------------


def assert_complete_single_session(page: Page, track, tenant) -> None:
    finals = page_finals(page)
    segments = [f["segment"] for f in finals]
    assert segments == sorted(set(segments)), f"duplicated or out-of-order finals on the page: {segments}"
    wer = word_error_rate([joined(track.references)], [joined([f["text"] for f in finals])])
    assert wer <= MAX_WER, (wer, finals)
    session_id = page.get_attribute("#recorder", "data-session-id")
    assert Session.objects.filter(tenant=tenant).count() == 1, "the page resumed into a new session"
    stored = stored_texts(session_id)
    assert word_error_rate([joined(track.references)], [joined(stored)]) <= MAX_WER, stored
    assert joined(stored) == joined([f["text"] for f in finals])


def test_a_dropped_socket_mid_utterance_is_resumed_and_no_utterance_is_lost(server, playwright, eval_dir, tmp_path):
    track = build_track(eval_dir, ["new-home.wav", "librivox-0870.wav", "goforward.wav"], tmp_path / "drop.wav")
    signup = make_member("Blip Ltd", "bea")
    browser = launch(playwright, microphone_wav=track.path)
    try:
        page = browser.new_page()
        log_in(page, server, "bea")
        page.goto(http(server, "/record/"))
        page.click("#start")
        middle = track.utterances[1]
        wait_for_audio(page, (middle.start_s + middle.end_s) / 2)
        page.evaluate("window.asrRecorder.simulateNetworkDrop()")
        wait_until(page, "document.getElementById('recorder').dataset.lastStatus.includes('reconnecting')")
        page.wait_for_selector("#recorder[data-reconnects='1']", timeout=30_000)
        assert page.inner_text("#status").startswith("Reconnected")
        page.screenshot(path=str(ARTIFACTS / "recording-page-reconnected.png"))
        wait_for_audio(page, track.duration_s)
        page.click("#stop")
        page.wait_for_selector("#recorder[data-state=done]", timeout=60_000)
        assert_complete_single_session(page, track, signup.tenant)
    finally:
        browser.close()


def test_a_server_restart_mid_utterance_is_resumed_from_the_page_s_audio_buffer(playwright, eval_dir, tmp_path):
    track = build_track(eval_dir, ["ldc93s1.wav", "librivox-0930.wav", "cards-005.wav"], tmp_path / "restart.wav")
    signup = make_member("Restart SA", "rex")
    with gateway_server() as server:
        browser = launch(playwright, microphone_wav=track.path)
        try:
            page = browser.new_page()
            log_in(page, server, "rex")
            page.goto(http(server, "/record/"))
            # The page's audio buffer is PCM's: an Opus container cannot be re-sent from an instant
            # (docs/internals.md#the-browser-recorder), so Opus loses what preceded the restart.
            page.select_option("#audio-mode", "pcm")
            page.click("#start")
            middle = track.utterances[1]
            wait_for_audio(page, (middle.start_s + middle.end_s) / 2)
            server.process.send_signal(signal.SIGKILL)
            server.process.wait()
            wait_until(page, "document.getElementById('recorder').dataset.lastStatus.includes('reconnecting')")
            with gateway_server(port=server.port):
                page.wait_for_selector("#recorder[data-reconnects='1']", timeout=30_000)
                wait_for_audio(page, track.duration_s)
                page.click("#stop")
                page.wait_for_selector("#recorder[data-state=done]", timeout=60_000)
                assert_complete_single_session(page, track, signup.tenant)
        finally:
            browser.close()


# --- 4. another tenant: 404 on the transcript and its downloads, and no use of its token -------------


def test_another_tenant_cannot_open_a_transcript_or_use_its_tokens(server, playwright):
    owner = make_member("Owner Org", "olga")
    make_member("Other Org", "otto")
    session = transcription_services.session_start(
        tenant_id=owner.tenant.pk, api_key_id=None, language="en", engine="test", sample_rate=16000
    )
    transcription_services.segment_store(
        tenant_id=owner.tenant.pk,
        session_id=session.pk,
        index=0,
        start=0.5,
        end=2.0,
        text="Secret plans.",
        reason="vad",
    )
    transcription_services.session_finish(
        tenant_id=owner.tenant.pk, session_id=session.pk, close_reason="stop", audio_seconds=3.0
    )
    browser = launch(playwright)
    try:
        owner_page = browser.new_context().new_page()
        log_in(owner_page, server, "olga")
        assert owner_page.goto(http(server, f"/transcripts/{session.pk}/")).status == 200

        other_page = browser.new_context().new_page()
        log_in(other_page, server, "otto")
        assert other_page.goto(http(server, f"/transcripts/{session.pk}/")).status == 404
        assert "Secret plans" not in other_page.content()
        for fmt in ("txt", "srt", "json"):
            response = other_page.request.get(http(server, f"/transcripts/{session.pk}/download.{fmt}"))
            assert response.status == 404 and "Secret plans" not in response.text()
        other_page.goto(http(server, "/transcripts/"))
        assert str(session.pk) not in other_page.content() and "No transcripts yet" in other_page.content()

        mint = "() => fetch('/record/token/', {method: 'POST', headers: {'X-CSRFToken': "
        mint += "document.querySelector('meta[name=csrf-token]').content}}).then(r => r.json())"
        owner_token = owner_page.evaluate(mint)["token"]
        with connect(f"{server.url}?token={owner_token}") as ws:
            ws.send(json.dumps({"type": "start", "interim_results": False}))
            ready = json.loads(ws.recv(timeout=30))
        assert ready["type"] == "ready"
        assert str(Session.objects.get(pk=ready["session_id"]).tenant_id) == str(owner.tenant.pk)

        # The owner's token, once used, is worthless to anyone; the other tenant's own token
        # cannot take over the owner's session even with its resume token.
        with connect(f"{server.url}?token={owner_token}") as ws:
            refused = json.loads(ws.recv(timeout=30))  # the server refuses before any message
        assert refused["code"] == "unauthenticated"
        other_token = other_page.evaluate(mint)["token"]
        hijack = {"session_id": ready["session_id"], "resume_token": ready["resume_token"]}
        with connect(f"{server.url}?token={other_token}") as ws:
            ws.send(json.dumps({"type": "start", "interim_results": False, "resume": hijack}))
            answer = json.loads(ws.recv(timeout=30))
        assert answer["type"] == "error" and answer["code"] == "resume_failed"
        assert not Session.objects.filter(tenant__name="Other Org").exists()
    finally:
        browser.close()


# --- plain-language messages ---------------------------------------------------------------------


def test_denied_or_missing_microphone_is_explained(server, playwright):
    make_member("Mic Co", "mia")
    denied = launch(playwright, fake_microphone=True, grant_microphone=False)
    try:
        page = denied.new_page()
        log_in(page, server, "mia")
        page.goto(http(server, "/record/"))
        page.click("#start")
        page.wait_for_selector("#status.status-error")
        assert "Microphone access was denied" in page.inner_text("#status")
        assert page.get_attribute("#recorder", "data-state") == "idle"
    finally:
        denied.close()
    no_device = launch(playwright)
    try:
        page = no_device.new_page()
        page.add_init_script(
            "navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException('none', 'NotFoundError'))"
        )
        log_in(page, server, "mia")
        page.goto(http(server, "/record/"))
        page.click("#start")
        page.wait_for_selector("#status.status-error")
        assert "No microphone was found" in page.inner_text("#status")
    finally:
        no_device.close()


def test_unreachable_server_and_quota_refusal_are_explained(server, playwright, eval_dir, tmp_path):
    track = build_track(eval_dir, ["goforward.wav"], tmp_path / "short.wav")
    make_member("Quota Co", "quinn")
    browser = launch(playwright, microphone_wav=track.path)
    try:
        page = browser.new_page()
        log_in(page, server, "quinn")
        page.goto(http(server, "/record/"))
        page.route("**/record/token/", lambda route: route.abort("connectionrefused"))
        page.click("#start")
        page.wait_for_selector("#status.status-error")
        assert "server can't be reached" in page.inner_text("#status")
        page.unroute("**/record/token/")

        def refuse(ws) -> None:
            def on_message(message) -> None:
                if isinstance(message, str) and json.loads(message).get("type") == "start":
                    error = {"type": "error", "code": "quota_exceeded", "message": "Monthly quota used."}
                    ws.send(json.dumps(error))
                    ws.close(code=4029, reason="quota")

            ws.on_message(on_message)

        page.route_web_socket(re.compile(r".*/ws/v1/transcribe.*"), refuse)
        page.click("#start")
        wait_until(page, "document.getElementById('recorder').dataset.lastStatus.includes('quota')")
        assert "used its audio quota for the month" in page.inner_text("#status")
        assert page.get_attribute("#recorder", "data-state") == "idle"
    finally:
        browser.close()
