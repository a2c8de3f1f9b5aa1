"""Two-pass finals by choice: both models decode each final and the surer decode is kept.

Neither of the Whisper models that ship here is better everywhere: on clean English tiny.en makes
fewer errors than base, in noise base makes fewer (docs/benchmarks.md, Accuracy). Whisper scores
its own decode: the mean log-probability per token, which it also uses to judge a decode failed
(``log_prob_threshold``). With ``"final_choice": "confident"`` a final is decoded by the session's
model and by its final model, and the decode with the higher mean log-probability is the final.
It costs both decodes for every final; partials stay with the session's model alone.
"""

import math

import numpy as np

from transcription.engine.recognizer import RecognizerStream, Transcription


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
        results = [
            stream.decode(audio, utterance=utterance, final=final, beam_size=beam_size, thrifty=thrifty, prefix=prefix)
            for stream in self.streams
        ]
        return max(results, key=surety)  # the first on a tie: the session's own model

    def remember(self, final: str, language: str | None) -> None:
        for stream in self.streams:
            stream.remember(final, language)


def surety(result: Transcription) -> float:
    """Whisper's mean log-probability per token; a decode without one ranks last."""
    return result.avg_logprob if result.avg_logprob is not None else -math.inf
