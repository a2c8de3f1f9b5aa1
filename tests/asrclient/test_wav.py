"""The CLI client's WAV handling: real clips read exactly, malformed files refused cleanly."""

from __future__ import annotations

import socket
import struct
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from asrclient import WavError, check_sendable, read_wav
from tests.support.paths import EVAL_DIR
from tests.support.paths import REPO as ROOT

REAL = EVAL_DIR / "real"
BAD_FILES = sorted((EVAL_DIR / "bad").glob("*.wav"))


def _unused_url() -> str:
    """A port nothing listens on: a client that tried to connect would fail with exit 1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"ws://127.0.0.1:{port}/ws/v1/transcribe"


def _run_client(wav: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, "-m", "asrclient", str(wav), "--url", _unused_url()]
    return subprocess.run(
        [*args, "--api-key", "not-a-key", *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _write_wav(path: Path, frames: np.ndarray, rate: int) -> None:
    """16-bit PCM via the stdlib writer, (n,) or (n, channels)."""
    channels = 1 if frames.ndim == 1 else frames.shape[1]
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames.astype("<i2").tobytes())


def _write_float_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    """IEEE-float WAV (format 3), which the stdlib `wave` module cannot write or read."""
    data = samples.astype("<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, rate, rate * 4, 4, 32)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def test_read_wav_reports_rate_and_duration_of_real_clips() -> None:
    audio = read_wav(REAL / "jfk.wav")
    assert audio.sample_rate == 16000
    assert audio.source_channels == 1
    assert audio.duration_s == pytest.approx(11.0, abs=0.01)
    cards = read_wav(REAL / "cards-001.wav")
    assert cards.num_samples == (35096 - 44) // 2


def test_read_wav_returns_exactly_the_samples_the_stdlib_reads() -> None:
    with wave.open(str(REAL / "ldc93s1.wav")) as src:
        expected = np.frombuffer(src.readframes(src.getnframes()), dtype="<i2")
    audio = read_wav(REAL / "ldc93s1.wav")
    assert audio.samples.dtype == np.int16
    np.testing.assert_array_equal(audio.samples, expected)


def test_stereo_wav_is_mixed_down_to_mono_at_its_own_rate(tmp_path: Path) -> None:
    mono = read_wav(REAL / "new-home.wav").samples.astype(np.int32)
    path = tmp_path / "stereo.wav"
    _write_wav(path, np.stack([mono, np.zeros_like(mono)], axis=1), 22050)
    audio = read_wav(path)
    assert audio.source_channels == 2
    assert audio.sample_rate == 22050
    assert audio.num_samples == len(mono)
    assert np.max(np.abs(audio.samples.astype(np.int32) - mono / 2)) <= 0.5


def test_keep_channels_gives_each_channel_as_it_was_for_a_multichannel_session(tmp_path: Path) -> None:
    speech = read_wav(REAL / "new-home.wav").samples
    frames = np.stack([speech, np.zeros_like(speech), speech // 2], axis=1)
    path = tmp_path / "three.wav"
    _write_wav(path, frames, 16000)
    audio = read_wav(path, keep_channels=True)
    assert audio.channels == 3 and audio.num_samples == len(speech)
    np.testing.assert_array_equal(audio.samples, frames)
    assert read_wav(path).channels == 1  # mixed down unless asked


def test_more_channels_than_the_server_transcribes_apart_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "nine.wav"
    _write_wav(path, np.zeros((1600, 9), dtype=np.int16), 16000)
    with pytest.raises(WavError, match="at most 8"):
        check_sendable(read_wav(path, keep_channels=True), 100)
    check_sendable(read_wav(path), 100)  # mixed down: one channel


def test_stereo_with_identical_channels_mixes_to_the_same_signal(tmp_path: Path) -> None:
    mono = read_wav(REAL / "cards-002.wav").samples
    path = tmp_path / "dual.wav"
    _write_wav(path, np.stack([mono, mono], axis=1), 16000)
    np.testing.assert_array_equal(read_wav(path).samples, mono)


def test_float32_wav_is_read_and_converted_to_16_bit(tmp_path: Path) -> None:
    mono = read_wav(REAL / "cards-003.wav").samples
    path = tmp_path / "float.wav"
    _write_float_wav(path, mono / 32768.0, 16000)
    audio = read_wav(path)
    assert audio.source_format == "float32"
    np.testing.assert_array_equal(audio.samples, mono)


@pytest.mark.parametrize("path", BAD_FILES, ids=[p.name for p in BAD_FILES])
def test_read_wav_raises_wav_error_for_malformed_file(path: Path) -> None:
    with pytest.raises(WavError):
        read_wav(path)


def test_the_bad_wav_directory_is_not_empty() -> None:
    assert len(BAD_FILES) >= 4


@pytest.mark.parametrize("path", BAD_FILES, ids=[p.name for p in BAD_FILES])
def test_cli_rejects_malformed_wav_with_one_line_and_exit_2_before_connecting(path: Path) -> None:
    proc = _run_client(path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "cannot connect" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    assert proc.stdout == ""


def test_cli_rejects_truncated_header(tmp_path: Path) -> None:
    path = tmp_path / "truncated.wav"
    path.write_bytes((REAL / "jfk.wav").read_bytes()[:30])
    proc = _run_client(path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error:") and "Traceback" not in proc.stderr


def test_cli_refuses_sample_rate_the_server_does_not_accept(tmp_path: Path) -> None:
    path = tmp_path / "96k.wav"
    _write_wav(path, np.zeros(9600, dtype=np.int16), 96000)
    proc = _run_client(path)
    assert proc.returncode == 2
    assert "sample rate 96000 Hz" in proc.stderr and "Traceback" not in proc.stderr


def test_frames_larger_than_64_kib_are_refused() -> None:
    audio = read_wav(REAL / "cards-001.wav")
    check_sendable(audio, 1000)  # 32000 bytes at 16 kHz is fine
    with pytest.raises(WavError):
        check_sendable(type(audio)(48000, audio.samples), 1000)


def test_cli_reports_a_clear_message_when_it_cannot_connect() -> None:
    proc = _run_client(REAL / "cards-001.wav")
    assert proc.returncode == 1
    assert "cannot connect to ws://127.0.0.1:" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert "not-a-key" not in proc.stderr
