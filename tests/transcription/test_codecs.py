"""The wire decoders (transcription/codecs/) on streams PyAV makes from real eval audio, fed as a
network delivers them: whole, a byte at a time, and cut at and around every page or element boundary."""

import random

import av
import numpy as np
import pytest

from tests.support.audio import clip
from tests.support.codecs import (
    encode_g711,
    encode_opus,
    encode_vorbis_ogg,
    ogg_opus_of_packets,
    ogg_page_starts,
    ogg_raw_page,
    webm_as_recorded,
    webm_element_starts,
)
from transcription.codecs import MAX_BUFFERED_BYTES, CodecError, open_decoder, wire_frame_bytes
from transcription.codecs.ebml import unlace
from transcription.codecs.g711 import TABLES
from transcription.codecs.ogg import ogg_crc
from transcription.engine import SessionLimits, parse_start


@pytest.fixture(scope="module")
def speech(eval_dir) -> np.ndarray:
    return clip(eval_dir, "jfk.wav")  # 11 s


@pytest.fixture(scope="module")
def streams(speech) -> dict[str, bytes]:
    webm = encode_opus(speech, "webm")
    return {"ogg": encode_opus(speech, "ogg"), "webm": webm, "webm-recorded": webm_as_recorded(webm)}


def decoder(**start):
    return open_decoder(parse_start(start, SessionLimits()))


def decode_in(pieces: list[bytes], **start) -> np.ndarray:
    dec = decoder(**start)
    out = b"".join(dec.decode(p) for p in pieces) + dec.flush()
    return np.frombuffer(out, "<i2")


def cut(data: bytes, points: list[int]) -> list[bytes]:
    points = sorted({p for p in points if 0 < p < len(data)})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


def boundaries(kind: str, data: bytes) -> list[int]:
    starts = ogg_page_starts(data) if kind == "ogg" else webm_element_starts(data)
    return [p + d for p in starts for d in (-1, 0, 1, 5, 27)]


@pytest.mark.parametrize("law", ["mulaw", "alaw"])
def test_g711_tables_are_ffmpeg_s_decoders_bit_for_bit(law):
    codec = av.CodecContext.create(f"pcm_{law}", "r")
    codec.sample_rate, codec.layout = 8000, "mono"
    reference = np.concatenate([f.to_ndarray().ravel() for f in codec.decode(av.Packet(bytes(range(256))))])
    assert np.array_equal(TABLES[law], reference)
    encoded = bytes(range(256)) * 3
    assert decode_in([encoded[:1], encoded[1:300], encoded[300:]], encoding=law).tolist() == reference.tolist() * 3


def test_g711_stereo_needs_whole_samples(speech):
    data = encode_g711(speech[:1600], "mulaw")
    assert len(decode_in([data], encoding="mulaw", channels=2)) == len(data)
    with pytest.raises(CodecError, match="not a whole number of mulaw samples"):
        decoder(encoding="mulaw", channels=2).decode(data[:3])


def test_the_fast_ogg_crc_is_the_bitwise_one():
    from tests.support.codecs import _reference_ogg_crc

    rng = random.Random(7)
    for size in (0, 1, 3, 27, 255, 4097):
        data = rng.randbytes(size)
        assert ogg_crc(data) == _reference_ogg_crc(data)


@pytest.mark.parametrize("kind", ["ogg", "webm", "webm-recorded"])
def test_opus_decodes_the_same_however_the_stream_is_cut(streams, speech, kind):
    data = streams[kind]
    whole = decode_in([data], encoding="opus", sample_rate=16000)
    # The speech itself, in time: the decoder's output lines up with what was encoded (pre-skip honoured).
    assert abs(len(whole) - len(speech)) <= 320  # one 20 ms frame of padding at most
    lag = np.argmax(np.correlate(whole[16000:48000].astype(float), speech[16000 - 80 : 48000 + 80], "valid")) - 80
    assert abs(lag) <= 2
    for pieces in (
        [data[i : i + 1] for i in range(len(data))],
        cut(data, boundaries("ogg" if kind == "ogg" else "webm", data)),
        cut(data, sorted(random.Random(kind).sample(range(1, len(data)), 300))),
    ):
        assert np.array_equal(decode_in(pieces, encoding="opus", sample_rate=16000), whole)


@pytest.mark.parametrize("rate", [8000, 12000, 24000, 48000])
def test_opus_decodes_to_each_of_its_rates(streams, speech, rate):
    pcm = decode_in([streams["ogg"]], encoding="opus", sample_rate=rate)
    assert abs(len(pcm) / rate - len(speech) / 16000) < 0.03


def test_a_stereo_stream_is_mixed_down_for_a_mono_session_and_refused_for_fewer_channels(speech):
    stereo = np.stack([speech, np.zeros_like(speech)], axis=1)
    data = encode_opus(stereo, "webm")
    mono = decode_in([data], encoding="opus", sample_rate=16000).astype(float) / 32768
    assert np.corrcoef(mono[16000:48000], speech[16000:48000] / 2)[0, 1] > 0.95
    both = decode_in([data], encoding="opus", sample_rate=16000, channels=2).reshape(-1, 2)
    assert np.abs(both[:, 0]).mean() > 20 * np.abs(both[:, 1]).mean()
    with pytest.raises(CodecError, match="1 channel\\(s\\) but the session declared 2"):
        decode_in([encode_opus(speech[:16000], "ogg")], encoding="opus", channels=2)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda s, st: encode_vorbis_ogg(s), "carries Vorbis, not Opus"),
        (lambda s, st: b"RIFF....WAVEfmt " + bytes(100), "Ogg or WebM container"),
        (lambda s, st: st["ogg"][:4000] + bytes(70000), "is corrupt"),
        (lambda s, st: st["ogg"][: ogg_page_starts(st["ogg"])[3]] + b"\x01" * 100, "Expected an Ogg page"),
        (lambda s, st: st["ogg"][: ogg_page_starts(st["ogg"])[3]] + st["webm"], "switched from Ogg to WebM"),
        (lambda s, st: st["webm"][: webm_element_starts(st["webm"])[9]] + st["ogg"], "switched from WebM to Ogg"),
        (lambda s, st: st["webm"][: webm_element_starts(st["webm"])[9]] + b"garbage!" * 9, "WebM"),
        (lambda s, st: st["webm"][: webm_element_starts(st["webm"])[7]] + st["webm"], "second one starts"),
        (lambda s, st: st["webm-recorded"][: webm_element_starts(st["webm-recorded"])[12]] + st["webm"], "second one"),
    ],
    ids=[
        "vorbis",
        "wav",
        "bad-crc",
        "garbage-after-page",
        "ogg-to-webm",
        "webm-to-ogg",
        "webm-garbage",
        "two-webm",
        "two-recorded-webm",
    ],  # fmt: skip
)
def test_corrupt_or_foreign_streams_are_refused_with_a_reason(speech, streams, make, message):
    data = make(speech, streams)
    dec = decoder(encoding="opus")
    with pytest.raises(CodecError, match=message):
        for i in range(0, len(data), 1000):
            dec.decode(data[i : i + 1000])


def test_a_truncated_container_is_not_an_error_at_the_end(streams):
    data = streams["ogg"][:-37]
    dec = decoder(encoding="opus", sample_rate=16000)
    assert len(dec.decode(data)) > 0
    dec.flush()


def test_a_message_that_decodes_to_too_much_audio_is_refused():
    # 2-byte packets of 48 empty 2.5 ms frames: 120 ms each, 30 s in 250 of them, under 2 KB of Ogg.
    data = ogg_opus_of_packets([b"\x83\x30"] * 400)
    assert len(data) < 2000
    with pytest.raises(CodecError, match="more than 30 s"):
        decoder(encoding="opus").decode(data)
    dec = decoder(encoding="opus")  # the same audio a little at a time is fine
    assert sum(len(dec.decode(data[i : i + 500])) for i in range(0, len(data), 500)) == 400 * 5760 * 2 - 312 * 2


def test_buffered_bytes_are_bounded(streams):
    webm = streams["webm-recorded"]
    first_block = webm_element_starts(webm)[9]
    assert webm[first_block] == 0xA3  # a SimpleBlock, in the first Cluster
    huge_block = b"\xa3" + (0x10000000 | (MAX_BUFFERED_BYTES + 1)).to_bytes(4, "big")
    with pytest.raises(CodecError, match="is over"):
        decoder(encoding="opus").decode(webm[:first_block] + huge_block)
    # One packet that goes on over page after page (each 255 segments of 255 bytes, ~64 KiB).
    full = bytes([255] * 255), bytes(255 * 255)
    pages = [ogg_raw_page(*full, sequence=2 + i, flags=0x01 if i else 0) for i in range(20)]
    dec = decoder(encoding="opus")
    dec.decode(ogg_opus_of_packets([]))
    with pytest.raises(CodecError, match="larger than"):
        for page in pages:
            dec.decode(page)
    assert len(dec.demuxer.partial) <= MAX_BUFFERED_BYTES + 255 and len(dec.demuxer.buffer) < 70000


@pytest.mark.parametrize(
    ("lacing", "payload", "frames"),
    [
        (1, bytes([2, 3, 1]) + b"abc" + b"d" + b"ef", [b"abc", b"d", b"ef"]),
        (2, bytes([2]) + b"abcdef", [b"ab", b"cd", b"ef"]),
        (3, bytes([2, 0x83, 0xBD]) + b"abc" + b"d" + b"ef", [b"abc", b"d", b"ef"]),
    ],
    ids=["xiph", "fixed", "ebml"],
)
def test_laced_blocks_are_split_into_their_frames(lacing, payload, frames):
    assert unlace(payload, lacing) == frames


def test_wire_frames_are_samples_for_raw_encodings_and_bytes_for_containers():
    assert [wire_frame_bytes(e, 2) for e in ("pcm_s16le", "pcm_f32le", "mulaw", "alaw", "opus")] == [4, 8, 2, 2, 1]
