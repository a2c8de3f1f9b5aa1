"""pipecat, a voice-agent framework, pointed at asrplatform through its Deepgram speech-to-text
service (tests/clients/pipecat_stt.py, in pipecat's own venv that `make test` creates)."""

import json
import subprocess
import wave
from pathlib import Path

import pytest

from bench.evaluation import word_error_rate
from tests.support.audio import clips, to_s16
from tests.support.servers import gateway_server
from tests.support.tenants import make_tenant
from transcription.models import Session

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
PYTHON = ROOT / "var" / "clients" / "pipecat-venv" / "bin" / "python"
SCRIPT = ROOT / "tests" / "clients" / "pipecat_stt.py"
CLIPS = ["librivox-0870.wav", "ldc93s1.wav"]


@pytest.mark.skipif(not PYTHON.exists(), reason="no pipecat venv: `make client-venvs` creates it")
def test_pipecat_s_deepgram_service_transcribes_through_asrplatform(eval_dir, references, tmp_path):
    track = tmp_path / "speech.wav"
    with wave.open(str(track), "wb") as out:  # each clip followed by silence, as a microphone goes on
        out.setnchannels(1), out.setsampwidth(2), out.setframerate(16000)
        out.writeframes(to_s16(clips(eval_dir, CLIPS, gap_s=2.0)))
    tenant = make_tenant("pipecat")
    with gateway_server(extra_env={"REDIS_URL": ""}) as server:
        done = subprocess.run(
            [str(PYTHON), str(SCRIPT), server.http_url, tenant.raw_key, str(track)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(result["finals"]) == len(CLIPS) and result["interims"]
    assert word_error_rate([" ".join(references[c] for c in CLIPS)], [" ".join(result["finals"])]) <= 0.2
    session = Session.objects.get(tenant=tenant.tenant)
    assert session.protocol == "deepgram" and session.close_reason == "stop"
    assert [s.text.strip() for s in session.segments.order_by("index")] == result["finals"]
