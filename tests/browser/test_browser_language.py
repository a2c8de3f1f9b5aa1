"""The recording page's language menu in real Chromium against the real server: Chinese spoken into
the microphone (a WAV of the Mandarin eval clips) comes back as Chinese finals, and the page shows
the model the server chose and the language it heard. Screenshots go to test-artifacts/."""

from collections.abc import Iterator

import pytest
from playwright.sync_api import sync_playwright

from bench.evaluation import character_error_rate
from tests.support.paths import ARTIFACTS
from tests.support.servers import GatewayServer, gateway_server
from transcription import services as transcription_services
from transcription.models import Session

from .chromium import build_track, launch
from .test_browser_live import http, log_in, make_member, page_finals, stored_texts, wait_for_audio

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
LOOSE_CER = 0.2


@pytest.fixture(scope="module", autouse=True)
def orm_beside_playwright() -> Iterator[None]:
    """The ORM calls here run between browser steps, in the thread where Playwright keeps its loop."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker, whisper_base) -> Iterator[GatewayServer]:
    with gateway_server() as live:
        yield live


@pytest.fixture(scope="module")
def playwright() -> Iterator:
    with sync_playwright() as p:
        yield p


def test_choosing_chinese_gives_chinese_finals_and_shows_the_model_and_the_language_heard(
    server, playwright, eval_dir, tmp_path
):
    track = build_track(eval_dir, ["asr_example.wav", "mid.wav"], tmp_path / "zh.wav", subset="zh")
    signup = make_member("Lingua Co", "lin")
    browser = launch(playwright, microphone_wav=track.path)
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 820})
        log_in(page, server, "lin")
        page.goto(http(server, "/record/"))
        offered = page.eval_on_selector_all("#language option", "els => els.map(e => e.value)")
        assert offered[:3] == ["auto", "en", "zh"] and page.input_value("#language") == "en"
        page.select_option("#language", "zh")
        page.click("#start")
        page.wait_for_selector("#recorder[data-model]", timeout=60_000)
        assert page.inner_text("#session-model") == "base"  # ready's config.model: zh's model
        wait_for_audio(page, track.duration_s)
        page.click("#stop")
        page.wait_for_selector("#recorder[data-state=done]", timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / "recording-page-chinese.png"))

        assert page.get_attribute("#recorder", "data-detected-language") == "zh"
        assert page.is_visible("#detected-language") and page.inner_text("#detected-language") == "Chinese (Mandarin)"
        finals = [f["text"] for f in page_finals(page) if f["text"].strip()]
        cer = character_error_rate(["".join(track.references)], ["".join(finals)])
        print(f"Mandarin through the recording page: CER {cer:.3f}: {finals}")
        assert cer <= LOOSE_CER, (cer, finals)
        session = Session.objects.get(pk=page.get_attribute("#recorder", "data-session-id"))
        assert session.tenant == signup.tenant and session.language == "zh"
        assert [t for t in stored_texts(str(session.pk)) if t.strip()] == finals

        # The workspace's defaults are where the page's menus start.
        transcription_services.tenant_session_defaults_update(
            tenant_id=signup.tenant.pk, model="", language="auto", endpointing_ms=1200, final_model=""
        )
        page.goto(http(server, "/record/"))
        assert page.input_value("#language") == "auto" and page.input_value("#endpointing") == "1200"
    finally:
        browser.close()
