"""`python -m bench.batching`: does decoding several sessions' utterances in one CTranslate2 batch pay?

The decode scheduler could gather utterances of different sessions into one ``generate`` call.
On a GPU that amortises the kernel launches; on a CPU the same matrix work is done either way.
This measures it on this machine before anyone enables it: the same utterances (../shared/eval
clips, cut to the fitted encoder window the engine uses) decoded one by one and in batches of
2, 4 and 8, with CPU and wall time per utterance.
"""

import argparse
import time
from pathlib import Path

import numpy as np

from bench.evaluation import load_manifest
from transcription import audiofile
from transcription.engine.models import ModelSettings, load_models
from transcription.engine.recognizer import WhisperRecognizer

DEFAULT_EVAL = Path(__file__).resolve().parent.parent.parent / "shared" / "eval" / "real"


def _clips(eval_dir: Path) -> list[np.ndarray]:
    return [np.concatenate(list(audiofile.decode(e.audio_path))) for e in load_manifest(eval_dir)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.batching", description=__doc__)
    parser.add_argument("--eval-dir", type=Path, default=DEFAULT_EVAL)
    parser.add_argument("--sizes", default="1,2,4,8", help="batch sizes (default 1,2,4,8)")
    parser.add_argument("--window-s", type=int, default=10, help="encoder window for every utterance (default 10)")
    parser.add_argument("--model", default="tiny.en", help="a Whisper model of the registry (default tiny.en)")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--compute-type", default="int8", help="CTranslate2 compute type (default int8)")
    args = parser.parse_args(argv)

    from faster_whisper.audio import pad_or_trim
    from faster_whisper.tokenizer import Tokenizer

    settings = ModelSettings(device=args.device, compute_type=args.compute_type, default_model=args.model)
    recognizer = load_models(settings).recognizer_for("")
    assert isinstance(recognizer, WhisperRecognizer), "the default model must be a Whisper one"
    model = recognizer.model
    tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language="en")
    prompt = model.get_prompt(tokenizer, [], without_timestamps=True)
    frames = args.window_s * 100
    clips = [c[: args.window_s * 16000 - 16000] for c in _clips(args.eval_dir)]
    features = [pad_or_trim(model.feature_extractor(c)[:, :frames], frames) for c in clips]
    print(f"{len(clips)} utterances, encoder window {args.window_s} s, {args.model} {args.compute_type}, {args.device}")
    print(f"{'batch':>5} {'CPU ms/utt':>11} {'wall ms/utt':>12} {'wall ms/batch':>14}")
    model.model.generate(model.encode(features[0]), [prompt], beam_size=1, max_length=64)  # warm-up
    for size in (int(s) for s in args.sizes.split(",")):
        cpu0, wall0, batches = time.process_time(), time.perf_counter(), 0
        for _ in range(2):
            for i in range(0, len(features), size):
                group = features[i : i + size]
                while len(group) < size:  # keep every batch full so the sizes compare
                    group = group + features[: size - len(group)]
                encoded = model.encode(np.stack(group))
                model.model.generate(encoded, [prompt] * size, beam_size=1, max_length=len(prompt) + 96)
                batches += 1
        utterances = batches * size
        cpu = (time.process_time() - cpu0) * 1000
        wall = (time.perf_counter() - wall0) * 1000
        print(f"{size:>5} {cpu / utterances:>11.1f} {wall / utterances:>12.1f} {wall / batches:>14.1f}")
    print("A batch's members all wait for the whole batch: compare 'wall ms/batch' with the single decode.")


if __name__ == "__main__":
    main()
