"""Cross-session batching (engine/batching.py) on the real tiny.en model: decodes that ran together
as one batch give the same words as each alone, and a final does not wait out the batch window."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from bench.evaluation import load_manifest
from transcription import audiofile
from transcription.engine.batching import BatchSettings, set_urgent
from transcription.engine.models import tiny_en_dir
from transcription.engine.recognizer import WhisperRecognizer

PROMPTS = [
    "",
    "Glasses and a dog.",
    "The clubs, the queen and the king of hearts. Then we went forward ten meters and turned left, towards the"
    " old mill by the river, where the water runs fast in spring.",  # over a prompt step: cut to 16·k tokens
]


def recognizer(batching: BatchSettings | None) -> WhisperRecognizer:
    return WhisperRecognizer(
        tiny_en_dir(), device="cpu", compute_type="int8", cpu_threads=2, beam_size=1, batching=batching
    )


@pytest.fixture(scope="module")
def clips(eval_dir) -> list[np.ndarray]:
    """Utterances of the eval set short enough to share the 10 s encoder window."""
    audio = [np.concatenate(list(audiofile.decode(e.audio_path))) for e in load_manifest(eval_dir / "real")]
    return [a for a in audio if len(a) < 8 * 16000][:12]


def decode(model: WhisperRecognizer, audio: np.ndarray, prompt: str, *, urgent: bool) -> str:
    set_urgent(urgent)
    return model.recognize(audio, language="en", prompt=prompt).text


def test_batched_decodes_give_the_words_of_unbatched_ones(clips):
    assert len(clips) >= 8
    # Four sessions at a time with prompts of one length: each four can be one batch.
    prompts = [PROMPTS[i // 4 % len(PROMPTS)] for i in range(len(clips))]
    batched = recognizer(BatchSettings(window_ms=500, max_size=4, final_wait_ms=2))
    assert batched.batcher is not None
    # Finals one after another: each runs alone, a batch of one.
    alone = [decode(batched, audio, prompt, urgent=True) for audio, prompt in zip(clips, prompts, strict=True)]
    assert batched.batcher.batches == batched.batcher.requests == len(clips)

    with ThreadPoolExecutor(max_workers=4) as pool:  # four sessions' decode threads, partials
        together = list(pool.map(lambda pair: decode(batched, *pair, urgent=False), zip(clips, prompts, strict=True)))
    assert batched.batcher.requests == 2 * len(clips)
    assert batched.batcher.batches - len(clips) <= len(clips) // 2  # they did run together

    unbatched = recognizer(None)  # without batching, short prompts are the same prompts
    short = [i for i, prompt in enumerate(prompts) if len(prompt) < 40]
    assert [decode(unbatched, clips[i], prompts[i], urgent=False) for i in short] == [alone[i] for i in short]
    assert together == alone and all(together)


def test_a_final_does_not_wait_for_a_batch_but_a_partial_does(clips):
    batched = recognizer(BatchSettings(window_ms=3000, max_size=8, final_wait_ms=2))
    decode(batched, clips[0], "", urgent=True)  # the first decode of a model is slower

    started = time.monotonic()
    decode(batched, clips[0], "", urgent=True)
    final_s = time.monotonic() - started
    started = time.monotonic()
    decode(batched, clips[0], "", urgent=False)
    partial_s = time.monotonic() - started

    assert final_s < 1.5 <= 3.0 <= partial_s  # alone, the partial waited out its window; the final did not


def test_a_final_joining_a_waiting_batch_cuts_its_wait(clips):
    batched = recognizer(BatchSettings(window_ms=20000, max_size=8, final_wait_ms=2))
    results: list[str] = []
    partial = threading.Thread(target=lambda: results.append(decode(batched, clips[0], "", urgent=False)))
    started = time.monotonic()
    partial.start()
    time.sleep(0.3)  # the partial leads a batch that would wait 20 s
    final = decode(batched, clips[1], "", urgent=True)
    partial.join(60)

    assert final and results and time.monotonic() - started < 10  # both went in the final's batch, at once
    assert batched.batcher is not None and (batched.batcher.batches, batched.batcher.requests) == (1, 2)
