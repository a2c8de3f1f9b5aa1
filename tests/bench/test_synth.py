"""bench.synth: espeak-ng + sox clips that the manifest loader, the WAV reader and the model accept."""

import shutil

import numpy as np
import pytest

from asrclient import read_wav
from bench.evaluation import load_manifest, word_error_rate
from bench.offline import load_transcriber
from bench.synth import plan, synthesize
from tests.support.audio import wav_float32

pytestmark = pytest.mark.skipif(
    shutil.which("espeak-ng") is None or shutil.which("sox") is None,
    reason="espeak-ng or sox is not installed (apt-get install -y espeak-ng sox)",
)
COUNT = 3


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    synthesize(out, count=COUNT, seed=11, echo=False)
    return out


def test_manifest_lists_every_clip_with_its_spoken_text(synth_dir):
    entries = load_manifest(synth_dir)
    specs = plan(COUNT, 11)
    assert [e.name for e in entries] == [s.name for s in specs]
    assert [e.text for e in entries] == [s.text for s in specs]
    assert all(e.source.startswith("espeak-ng ") and e.audio_path.exists() for e in entries)


def test_clips_are_16k_mono_s16_with_speech_energy(synth_dir):
    for entry in load_manifest(synth_dir):
        audio = read_wav(entry.audio_path)
        assert (audio.sample_rate, audio.source_channels, audio.source_format) == (16000, 1, "pcm_s16le")
        samples = audio.samples.astype(np.float64) / 32768.0
        assert 1.0 < audio.duration_s < 15.0, entry.name
        assert np.sqrt((samples**2).mean()) > 0.02, entry.name  # about -34 dBFS: speech, not silence
        assert np.abs(samples).max() < 0.99, entry.name  # no clipping after the noise is mixed in


def test_same_seed_gives_the_same_audio(synth_dir, tmp_path):
    again = synthesize(tmp_path, count=COUNT, seed=11, echo=False)
    for first, second in zip(load_manifest(synth_dir), again, strict=True):
        assert first.audio_path.read_bytes() == second.audio_path.read_bytes()


def test_the_real_model_recognises_synthetic_speech(synth_dir):
    transcribe, _source = load_transcriber()
    rates = []
    for entry in load_manifest(synth_dir):
        samples = wav_float32(entry.audio_path)
        rates.append(word_error_rate([entry.text], [transcribe(samples)]))
    assert min(rates) < 0.5, rates
