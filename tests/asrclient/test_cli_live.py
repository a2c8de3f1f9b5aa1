"""The CLI client against the real server serving the real application (subprocesses both)."""

import json

import numpy as np
import pytest

from bench.evaluation import word_error_rate
from tests.support.audio import clip
from tests.support.cli import run_client
from tests.support.servers import free_port, gateway_server
from tests.support.tenants import make_tenant

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker):
    with gateway_server() as server:
        yield server


def test_json_mode_prints_only_server_messages_and_exits_zero(server, eval_dir):
    key = make_tenant("cli").raw_key
    result = run_client(str(eval_dir / "real" / "goforward.wav"), "--url", server.url, "--api-key", key, "--json")
    assert result.returncode == 0, result.stderr
    messages = [json.loads(line) for line in result.stdout.splitlines()]
    assert messages[0]["type"] == "ready" and messages[-1]["type"] == "closed"
    finals = [m for m in messages if m["type"] == "final"]
    assert word_error_rate(["go forward ten meters"], [" ".join(f["text"] for f in finals)]) == 0.0


def test_human_mode_prints_finals_with_times_and_a_stereo_44k_file_works(server, eval_dir, tmp_path):
    import wave

    import soxr

    mono = clip(eval_dir, "new-home.wav")
    audio = soxr.resample(np.concatenate([mono, np.zeros(16000, np.float32)]), 16000, 44100)
    stereo = (np.stack([audio, audio], axis=1) * 32767).astype("<i2")
    path = tmp_path / "stereo.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2), out.setsampwidth(2), out.setframerate(44100)
        out.writeframes(stereo.tobytes())
    key = make_tenant("cli-human").raw_key
    result = run_client(str(path), "--url", server.url, "--api-key", key)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("[") and "] " in lines[0]
    assert word_error_rate(["we must find a new home in the stars"], [lines[0].split("] ", 1)[1]]) == 0.0


def test_multichannel_transcribes_each_channel_of_a_stereo_call_apart(server, eval_dir):
    """Two talkers at once, one per channel: mixed down they garble each other; with
    --multichannel each channel's finals are that talker's words, marked with the channel."""
    manifest = json.loads((eval_dir / "stereo" / "manifest.jsonl").read_text().splitlines()[0])
    references = {c["channel"]: c["text"] for c in manifest["channels"]}
    wav, key = str(eval_dir / "stereo" / "two-talkers.wav"), make_tenant("cli-stereo").raw_key

    result = run_client(wav, "--url", server.url, "--api-key", key, "--multichannel", "--json")
    assert result.returncode == 0, result.stderr
    messages = [json.loads(line) for line in result.stdout.splitlines()]
    finals = [m for m in messages if m["type"] == "final"]
    for channel, reference in references.items():
        heard = " ".join(f["text"] for f in finals if f["channel"] == channel)
        assert word_error_rate([reference], [heard]) <= 0.15, (channel, heard)

    human = run_client(wav, "--url", server.url, "--api-key", key, "--multichannel")
    assert human.returncode == 0, human.stderr
    lines = human.stdout.strip().splitlines()
    assert {line.split("] ", 1)[1].split(":", 1)[0] for line in lines} == {"Channel 1", "Channel 2"}


def test_bad_key_exits_non_zero_with_the_server_s_reason(server, eval_dir):
    result = run_client(str(eval_dir / "real" / "goforward.wav"), "--url", server.url, "--api-key", "asr_nope")
    assert result.returncode == 1
    assert "unauthenticated" in result.stderr or "API key" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_server_exits_non_zero_with_a_clear_message(eval_dir):
    url = f"ws://127.0.0.1:{free_port()}/ws/v1/transcribe"
    result = run_client(str(eval_dir / "real" / "goforward.wav"), "--url", url, "--api-key", "asr_x", timeout=30)
    assert result.returncode == 1 and "connect" in result.stderr.lower() and "Traceback" not in result.stderr


def test_a_rate_limited_address_gets_one_clear_rate_limited_line(eval_dir):
    with gateway_server(extra_env={"ASR_WS_AUTH_FAILURES": "2", "ASR_PRELOAD": "0", "REDIS_URL": ""}) as server:
        wav = str(eval_dir / "real" / "goforward.wav")
        for _ in range(2):
            assert "unauthenticated" in run_client(wav, "--url", server.url, "--api-key", "asr_nope").stderr
        result = run_client(wav, "--url", server.url, "--api-key", make_tenant("cli-limited").raw_key)
    assert result.returncode == 1 and result.stdout == "" and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: rate_limited: Too many failed authentication attempts")
    assert lines[0].endswith(" s.") and "try again in" in lines[0]
