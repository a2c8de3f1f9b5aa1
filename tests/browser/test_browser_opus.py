"""The recording page's audio menu in real Chromium against the real server: the same microphone
file recorded as Opus (MediaRecorder, WebM) and as PCM (AudioWorklet) gives the same finals, Opus a
fraction of the bytes, and an Opus recording survives a dropped socket (a new container for the new
connection); the choice is remembered, and a browser without one of the two gets the other.

Prints bytes per minute and WER of each mode (the figures in docs/benchmarks.md).
"""

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, sync_playwright

from bench.evaluation import word_error_rate
from tests.support.paths import ARTIFACTS
from tests.support.servers import GatewayServer, gateway_server
from transcription.models import Session

from .chromium import MicrophoneTrack, build_track, launch
from .test_browser_live import (
    MAX_WER,
    http,
    joined,
    log_in,
    make_member,
    page_finals,
    stored_texts,
    wait_for_audio,
    wait_until,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
CLIPS = ["goforward.wav", "cards-005.wav", "new-home.wav", "librivox-0930.wav"]
# Opus at 32 kbit/s has given the very words PCM gives on this track; a codec may still move one
# word of a decision Whisper makes at the margin, so the bound is one word of the track (1/N WER)
# or 1 WER point, whichever is larger.
MAX_WORDS_CHANGED = 1


@pytest.fixture(scope="module", autouse=True)
def orm_beside_playwright() -> Iterator[None]:
    """The ORM calls here run between browser steps, in the thread where Playwright keeps its loop."""
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


def record_in_mode(
    playwright, server: GatewayServer, track: MicrophoneTrack, username: str, mode: str, drop_at_s: float | None = None
) -> dict:
    """One recording of the whole track in ``mode``, in a fresh browser (the fake microphone plays
    the file once), the socket dropped at ``drop_at_s``; then the page is reloaded to see the audio
    menu remember the choice."""
    browser = launch(playwright, microphone_wav=track.path)
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 820})
        csp: list[str] = []
        page.on("console", lambda m: csp.append(m.text) if "Content Security Policy" in m.text else None)
        log_in(page, server, username)
        page.goto(http(server, "/record/"))
        assert page.input_value("#audio-mode") == "opus"  # the default, where the browser records Opus
        page.select_option("#audio-mode", mode)
        page.click("#start")
        page.wait_for_selector("#transcript li.seg.partial", timeout=60_000)  # partials stay live
        if drop_at_s is not None:
            wait_for_audio(page, drop_at_s)
            page.evaluate("window.asrRecorder.simulateNetworkDrop()")
            wait_until(page, "document.getElementById('recorder').dataset.lastStatus.includes('reconnecting')")
            page.wait_for_selector("#recorder[data-reconnects='1']", timeout=30_000)
        wait_for_audio(page, track.duration_s)
        page.click("#stop")
        page.wait_for_selector("#recorder[data-state=done]", timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / f"recording-page-{mode}.png"))
        assert not csp, csp
        result = {
            "finals": [f["text"] for f in page_finals(page)],
            "bytes": int(page.get_attribute("#recorder", "data-bytes-sent") or 0),
            "session": Session.objects.get(pk=page.get_attribute("#recorder", "data-session-id")),
        }
        page.reload()
        assert page.input_value("#audio-mode") == mode and page.is_visible("#audio-mode")
        return result
    finally:
        browser.close()


def modes_offered(page: Page) -> dict[str, bool]:
    """Each audio mode and whether it can be chosen."""
    options = page.eval_on_selector_all("#audio-mode option", "els => els.map(e => [e.value, !e.disabled])")
    return dict(options)


def test_opus_mode_gives_the_finals_pcm_gives_for_a_fraction_of_the_bytes(server, playwright, eval_dir, tmp_path):
    track = build_track(eval_dir, CLIPS, tmp_path / "speech.wav")
    signup = make_member("Codec Co", "oona")
    pcm = record_in_mode(playwright, server, track, "oona", "pcm")
    # A blip in the pause after the second sentence: the new connection gets a new container.
    opus = record_in_mode(playwright, server, track, "oona", "opus", drop_at_s=track.utterances[1].end_s + 0.7)
    assert Session.objects.filter(tenant=signup.tenant).count() == 2  # the Opus session was resumed

    reference = [joined(track.references)]
    figures = {}
    for mode, run in (("pcm", pcm), ("opus", opus)):
        session = run["session"]
        session.refresh_from_db()
        assert session.encoding == ("opus" if mode == "opus" else "pcm_s16le")
        assert session.close_reason == "stop" and session.audio_seconds == pytest.approx(track.duration_s, abs=1.0)
        assert stored_texts(str(session.pk)) == run["finals"]
        wer = word_error_rate(reference, [joined(run["finals"])])
        assert wer <= MAX_WER, (mode, wer, run["finals"])
        figures[mode] = (run["bytes"] * 60 / session.audio_seconds, wer)
    words = len(reference[0].split())
    for mode, (per_minute, wer) in figures.items():
        print(f"{mode}: {per_minute / 1000:.0f} kB per minute on the wire, WER {wer:.3f} ({words} words)")
    print("pcm finals: ", pcm["finals"], "\nopus finals:", opus["finals"])
    # Last pieces included: the final after stop is there in both modes, with the same words.
    assert len(opus["finals"]) == len(pcm["finals"])
    assert figures["opus"][1] <= figures["pcm"][1] + max(0.01, MAX_WORDS_CHANGED / words)
    assert word_error_rate([joined(pcm["finals"])], [joined(opus["finals"])]) <= max(0.01, MAX_WORDS_CHANGED / words)
    # PCM is 16 kHz s16, 1.92 MB a minute; Opus at 32 kbit/s with WebM's framing about a seventh.
    assert figures["pcm"][0] == pytest.approx(1_920_000, rel=0.02)
    assert figures["opus"][0] < figures["pcm"][0] / 5


def test_a_browser_without_one_capture_gets_the_other(server, playwright):
    """No AudioWorklet: Opus, PCM not offered. No Opus in MediaRecorder: PCM, whatever was remembered."""
    make_member("Fallback Co", "flo")
    browser = launch(playwright)
    try:
        page = browser.new_context().new_page()
        page.add_init_script("delete window.AudioWorkletNode")
        log_in(page, server, "flo")
        page.goto(http(server, "/record/"))
        assert modes_offered(page) == {"opus": True, "pcm": False}
        assert page.input_value("#audio-mode") == "opus"

        context = browser.new_context()
        context.add_init_script("localStorage.setItem('asr.record.audio', 'opus')")
        context.add_init_script("MediaRecorder.isTypeSupported = () => false")
        page = context.new_page()
        log_in(page, server, "flo")
        page.goto(http(server, "/record/"))
        assert modes_offered(page) == {"opus": False, "pcm": True}
        assert page.input_value("#audio-mode") == "pcm"
        assert "not in this browser" in page.inner_text("#audio-mode")
    finally:
        browser.close()
