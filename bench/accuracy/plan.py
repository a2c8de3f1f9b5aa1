"""What `python -m bench accuracy` measures: conditions (eval audio, perhaps noisy) and systems (models)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.evaluation import ManifestEntry, load_manifest
from bench.noise import Condition, make_variant, variant_dir

# The clips of --quick: a spread of lengths and talkers, the longest English clip first.
QUICK_CLIPS = {
    "real": ("jfk.wav", "librivox-0870.wav", "cards-005.wav", "ldc93s1.wav", "goforward.wav"),
    "long": ("gates-ted.wav",),
    "zh": ("asr_example.wav",),
    "zh-read": ("aishell-BAC009S0724W0121.wav",),
}


@dataclass(frozen=True)
class EvalCondition:
    """Eval sets scored together, with ``noise`` applied to every clip; ``language`` picks WER or CER."""

    name: str
    sets: tuple[str, ...]
    language: str = "en"
    noise: Condition = Condition("clean")

    @property
    def metric(self) -> str:
        return "CER" if self.language == "zh" else "WER"

    @property
    def label(self) -> str:
        sets = " + ".join(f"{s}/" for s in self.sets)
        return sets if self.noise.kind == "clean" else f"{sets} {self.noise.name}"


NAMED = {
    "clean": EvalCondition("clean", ("real",)),
    "long": EvalCondition("long", ("long",)),
    "zh": EvalCondition("zh", ("zh", "zh-read"), "zh"),
}
DEFAULT_CONDITIONS = ("clean", "white-20db", "white-10db", "babble-20db", "music-20db", "long", "zh")


def parse_condition(name: str) -> EvalCondition:
    """``clean``, ``long``, ``zh``, or a noise on real/: ``white-20db`` or ``white:20``, ``level:-6``."""
    if name in NAMED:
        return NAMED[name]
    spec = name
    if name.startswith("level") and ":" not in name:  # level-6dbfs → level:-6
        spec = "level:" + name.removeprefix("level").removesuffix("dbfs")
    elif ":" not in name and name.endswith("db"):  # white-20db → white:20
        kind, _, value = name.removesuffix("db").partition("-")
        spec = f"{kind}:{value}"
    noise = Condition.parse(spec)
    return EvalCondition(noise.name, ("real",), "en", noise)


@dataclass(frozen=True)
class System:
    """One row per condition: a model, or a pairing (partials by ``model``, finals by ``final_model``,
    or with ``final_choice`` "confident" by whichever of the two is surer of each final)."""

    model: str
    final_model: str = ""
    final_choice: str = "final_model"

    @property
    def name(self) -> str:
        if not self.final_model:
            return self.model
        return f"{self.model}{'|' if self.final_choice == 'confident' else '+'}{self.final_model}"

    @property
    def offline_model(self) -> str:
        """The model whose offline decode is the reference: the one that writes the finals."""
        return self.final_model or self.model

    def start(self, language: str) -> dict[str, str]:
        return {"model": self.model, "language": language}


def parse_pairing(text: str) -> System:
    """PARTIAL+FINAL: finals by FINAL; PARTIAL|FINAL: finals by the surer of the two (final_choice confident)."""
    sign = "|" if "|" in text else "+"
    partial, _, final = text.partition(sign)
    if not (partial and final):
        raise ValueError(f"a pairing is PARTIAL+FINAL or PARTIAL|FINAL (tiny.en+base, tiny.en|base), not {text!r}")
    return System(partial, final, "confident" if sign == "|" else "final_model")


def select_clips(entries: list[ManifestEntry], set_name: str, *, quick: bool, limit: int | None) -> list[ManifestEntry]:
    if quick and set_name in QUICK_CLIPS:
        order = QUICK_CLIPS[set_name]
        picked = sorted((e for e in entries if e.name in order), key=lambda e: order.index(e.name))
        entries = picked or entries[:1]  # another eval dir without these clips: its first one
    return entries[:limit] if limit else entries


def condition_clips(
    condition: EvalCondition, eval_dir: Path, variants: Path, *, seed: int, quick: bool, limit: int | None
) -> list[ManifestEntry]:
    """The clips to score, the noisy ones written under ``variants`` first (babble from the whole set)."""
    clips: list[ManifestEntry] = []
    for set_name in condition.sets:
        every = load_manifest(eval_dir / set_name)
        chosen = select_clips(every, set_name, quick=quick, limit=limit)
        if condition.noise.kind != "clean":
            out = variant_dir(variants, set_name, condition.noise, seed)
            chosen = make_variant(chosen, out, condition.noise, seed=seed, pool=every)
        clips += chosen
    return clips
