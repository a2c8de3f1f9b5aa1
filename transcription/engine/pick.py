"""Two-pass finals by choice: both models decode each final and the surer decode is kept.

Neither of the Whisper models that ship here is better everywhere: on clean English tiny.en makes
fewer errors than base, in noise base makes fewer (docs/benchmarks.md, Accuracy). Whisper scores
its own decode: the mean log-probability per token, which it also uses to judge a decode failed
(``log_prob_threshold``). With ``"final_choice": "confident"`` a final is decoded by the session's
model and by its final model, and the decode with the higher mean log-probability is the final.
It costs both decodes for every final; partials stay with the session's model alone. The two
decodes run side by side (the final model's on a thread of this module's own pool), so the final
waits for the slower one, not for both in turn: CTranslate2 releases the GIL, and each model has
replicas of its own.
"""

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from transcription.engine.recognizer import RecognizerStream, Transcription

# The final models' decodes of every confident session in this process; a final that finds them
# all busy waits for one, which bounds the extra decodes to this many at once.
SIDE_DECODES = 4
_side = ThreadPoolExecutor(max_workers=SIDE_DECODES, thread_name_prefix="asr-confident")


class ConfidentStream:
    """A stream over two others that answers with whichever decode its model is surer of."""

    incremental = False

    def __init__(self, first: RecognizerStream, second: RecognizerStream) -> None:
        self.streams = (first, second)
        self.forces_prefix = first.forces_prefix and second.forces_prefix

    def decode(
        self,
        audio: np.ndarray,
        *,
        utterance: int,
        final: bool,
        beam_size: int | None,
        thrifty: bool = False,
        prefix: str = "",
    ) -> Transcription:
        def run(stream: RecognizerStream) -> Transcription:
            return stream.decode(
                audio, utterance=utterance, final=final, beam_size=beam_size, thrifty=thrifty, prefix=prefix
            )

        first, second = self.streams
        other = _side.submit(run, second)
        try:
            mine = run(first)
        finally:
            theirs = other.result()  # waited for even when ours failed: a stream decodes one at a time
        return max((mine, theirs), key=surety)  # the first on a tie: the session's own model

    def remember(self, final: str, language: str | None) -> None:
        for stream in self.streams:
            stream.remember(final, language)


def surety(result: Transcription) -> float:
    """Whisper's mean log-probability per token; a decode without one ranks last."""
    return result.avg_logprob if result.avg_logprob is not None else -math.inf
