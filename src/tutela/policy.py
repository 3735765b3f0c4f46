"""The policy: a YAML document that turns signals into a verdict, categories and reasons.

The policy never does I/O while judging (loading the YAML is the only file access, done once),
so it can be evaluated in any flow, replayed in evaluation and unit-tested on recorded
signals. Detectors report; the policy decides.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tutela.accounts.policy import AccountsPolicy
from tutela.decision import Category, Signal, Verdict
from tutela.errors import ConfigError
from tutela.image.rules import ImagePolicy

DEFAULT_POLICY_RESOURCE = "policies/default.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Thresholds(_Strict):
    block: float = Field(0.6, gt=0, le=1)
    review: float = Field(0.35, gt=0, le=1)

    @field_validator("review")
    @classmethod
    def _review_below_block(cls, v: float, info) -> float:  # type: ignore[no-untyped-def]
        block = info.data.get("block", 0.6)
        if v > block:
            raise ValueError("review threshold must not exceed the block threshold")
        return v


class Actions(_Strict):
    sexual_minors: Literal["block"] = "block"
    sexualised_real_person: Literal["review", "block"] = "block"
    sexual_adult: Literal["allow", "review", "block"] = "block"
    minor_present: Literal["allow", "review"] = "allow"


class Retention(_Strict):
    allowed_prompt_days: int = Field(0, ge=0)


class Policy(_Strict):
    """The effective policy. Build with :meth:`load`; judge with :meth:`judge_prompt`."""

    version: int = 1
    thresholds: Thresholds = Thresholds()
    actions: Actions = Actions()
    detector_failure: Literal["block", "review"] = "block"
    retention: Retention = Retention()
    image: ImagePolicy = ImagePolicy()
    accounts: AccountsPolicy = AccountsPolicy()

    # --- loading -------------------------------------------------------------------------
    @classmethod
    def default_text(cls) -> str:
        return resources.files("tutela").joinpath(DEFAULT_POLICY_RESOURCE).read_text("utf-8")

    @classmethod
    def load(cls, path: Path | str | None = None) -> Policy:
        """Load ``path`` (or the bundled default). Invalid files raise :class:`ConfigError`."""
        try:
            text = Path(path).read_text(encoding="utf-8") if path else cls.default_text()
        except OSError as exc:
            raise ConfigError(f"cannot read policy file {path}: {exc}") from exc
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"policy file {path} is not valid YAML: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"policy file {path} must hold a mapping")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(f"invalid policy {path or '(default)'}: {exc}") from exc

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)

    # --- judging -------------------------------------------------------------------------
    def judge_prompt(self, signals: Sequence[Signal]) -> Judgement:
        """Combine prompt signals into categories, a verdict and readable reasons."""
        for s in signals:
            if s.kind == "detector_error":  # the reader failed: fail closed
                return self.judge_failure(s.detector, str(s.evidence.get("error", "error")))
        best = _best_by_kind(signals)
        coded = best.get("coded_abuse", 0.0)
        minor = best.get("minor", 0.0)
        sexual = max(best.get("sexual", 0.0), best.get("undress", 0.0))
        suggestive = best.get("suggestive", 0.0)
        revealing = best.get("revealing", 0.0)
        rescued = minor > 0 and best.get("adult", 0.0) > 0 and _weak_minor_only(signals)
        if rescued:
            # "girl", "petite", "young" are ambiguous; an adult indicator settles them.
            # A strong minor reading (child word, age under 18) is never rescued.
            minor = 0.0

        sexual_minors = max(
            coded,
            min(minor, sexual),
            min(minor, suggestive),
            min(minor, revealing, _REVEALING_CAP),
        )
        t = self.thresholds
        categories = {
            _SM: sexual_minors,
            _SA: 0.0 if sexual_minors >= t.review else sexual,
            _MP: minor if sexual_minors < t.review else 0.0,
        }
        reasons = _reasons(signals)
        if coded >= t.block:
            reasons.insert(0, "a term that on its own means child sexual abuse material")
        elif sexual_minors >= t.review:
            reasons.insert(0, "sexual or undressing language together with a minor")
        return self._verdict(categories, reasons)

    def judge_image(
        self,
        signals: Sequence[Signal],
        *,
        prompt_signals: Sequence[Signal] = (),
        edit: bool = False,
    ) -> Judgement:
        """Judge an image's detector and hash signals, with the prompt's (rules: image/judge.py)."""
        from tutela.image.judge import judge_image

        return judge_image(self, signals, prompt_signals=prompt_signals, edit=edit)

    def judge_failure(self, detector: str, error: str) -> Judgement:
        """A detector needed for ``sexual_minors`` failed: fail closed."""
        verdict = Verdict.BLOCK if self.detector_failure == "block" else Verdict.REVIEW
        return Judgement(
            verdict,
            {Category.SEXUAL_MINORS.value: 1.0},
            [f"detector {detector} failed ({error}); failing closed"],
        )

    def _verdict(self, categories: dict[str, float], reasons: list[str]) -> Judgement:
        """Apply thresholds and per-category actions; the strictest outcome wins."""
        verdict = Verdict.ALLOW
        t = self.thresholds
        for name, score in categories.items():
            if score >= t.block:
                action = _VERDICTS[getattr(self.actions, name)]  # Verdict(value), as a look-up
            elif score >= t.review and name != _MP:
                action = Verdict.REVIEW if getattr(self.actions, name) != "allow" else Verdict.ALLOW
            else:
                continue
            if _RANK[action] > _RANK[verdict]:
                verdict = action
        return Judgement(verdict, {k: v for k, v in categories.items() if v > 0}, reasons)


_RANK = {Verdict.ALLOW: 0, Verdict.REVIEW: 1, Verdict.BLOCK: 2}
#: The enums' values, read once: an Enum's ``.value`` and ``Verdict(...)`` are Python-level
#: calls, and the policy judges every prompt.
_VERDICTS = {v.value: v for v in Verdict}
_SM = Category.SEXUAL_MINORS.value
_SA = Category.SEXUAL_ADULT.value
_MP = Category.MINOR_PRESENT.value


@dataclass(slots=True)
class Judgement:
    """What the policy concluded; the Guard wraps it into a :class:`Decision`."""

    verdict: Verdict
    categories: dict[str, float]
    reasons: list[str] = field(default_factory=list)
    report: bool = False
    """Flag for the reporting queue (known-material hash matches, apparent minors)."""


#: A minor with revealing clothing (underwear, bikini) goes to review, never straight to block:
#: swimwear photos of children are common and mostly innocent, but worth a human look.
_REVEALING_CAP = 0.5


def _weak_minor_only(signals: Iterable[Signal]) -> bool:
    """True when every minor indication is an ambiguous (weak-tier) word, no age or child word."""
    terms = [t for s in signals if s.kind == "minor" for t in s.evidence.get("terms", ())]
    return bool(terms) and all(t.get("weak") for t in terms)


def _best_by_kind(signals: Iterable[Signal]) -> dict[str, float]:
    best: dict[str, float] = {}
    for s in signals:
        if s.score > best.get(s.kind, 0.0):
            best[s.kind] = s.score
    return best


_KIND_WORDS = {
    "coded_abuse": "coded abuse term",
    "minor": "minor indicator",
    "sexual": "sexual term",
    "suggestive": "suggestive term",
    "undress": "undressing/edit intent",
    "revealing": "revealing clothing",
    "adult": "adult indicator",
}


def _reasons(signals: Iterable[Signal]) -> list[str]:
    """One readable line per matched signal, naming the words as written and normalised."""
    out: list[str] = []
    for s in signals:
        if s.kind == "obfuscation":  # a reviewer should see that the text was disguised
            counts = s.evidence.get("counts", {})
            out.append("obfuscation: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
            continue
        label = _KIND_WORDS.get(s.kind)
        if label is None:
            continue
        for term in s.evidence.get("terms", ()):
            written, norm = term.get("as_written", ""), term.get("normalised", "")
            shown = f"'{written}'" if written == norm else f"'{written}' (read as '{norm}')"
            out.append(f"{label}: {shown}")
    return out
