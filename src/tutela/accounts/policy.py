"""The ``accounts`` section of the policy YAML: escalation ladder, probing, reuse, the learned
prompt bank, risk bands and age assurance.

These are plain validated models: no I/O, no clock. :mod:`tutela.policy` embeds
:class:`AccountsPolicy` as ``Policy.accounts`` so one file states everything a platform
decides, and the monitor reads it. Unknown keys are rejected, like the rest of the policy.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tutela.accounts.tiers import AgeTier, Feature
from tutela.decision import AccountAction, Category


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Trigger = Literal["blocks", "probing", "coded_abuse", "reuse", "bank_match"]


class EscalationRule(_Strict):
    """One rung of the ladder: when ``when`` happens (``count`` times within ``within_hours``
    for ``blocks``), the account gets ``action`` for ``duration_minutes`` (``None``: until a
    person lifts it, or for ``step_up`` until a stronger verification is recorded)."""

    when: Trigger
    category: Category = Category.SEXUAL_MINORS
    count: int = Field(1, ge=1, le=1000)
    within_hours: float | None = Field(None, gt=0)
    action: AccountAction
    duration_minutes: float | None = Field(None, gt=0)
    report: bool = False

    @model_validator(mode="after")
    def _timed_actions(self) -> EscalationRule:
        timed = self.action in (AccountAction.WARN, AccountAction.COOLDOWN)
        if timed and not self.duration_minutes:
            raise ValueError(f"action {self.action} needs duration_minutes")
        if self.action is AccountAction.NONE and self.report is False:
            raise ValueError("a rule with action 'none' must at least set report: true")
        return self


def _default_ladder() -> tuple[EscalationRule, ...]:
    sm = Category.SEXUAL_MINORS
    return (
        EscalationRule(when="blocks", category=sm, count=1, within_hours=24,
                       action=AccountAction.WARN, duration_minutes=24 * 60),
        EscalationRule(when="blocks", category=sm, count=2, within_hours=24,
                       action=AccountAction.COOLDOWN, duration_minutes=60),
        EscalationRule(when="probing", action=AccountAction.STEP_UP),
        EscalationRule(when="coded_abuse", action=AccountAction.SUSPEND, report=True),
        EscalationRule(when="blocks", category=sm, count=3, within_hours=30 * 24,
                       action=AccountAction.SUSPEND, report=True),
    )  # fmt: skip


class Probing(_Strict):
    """Iterative probing: attempts after a block that look like the blocked one, reworded.

    An attempt within ``window_minutes`` of one of the account's blocks is a *probe* when it
    is a near-duplicate of a blocked attempt (similarity >= ``similarity``: Jaccard, or
    containment of the smaller shingle set in the larger) and shows one more sign: it was
    itself blocked or sent to review, it is more obfuscated than the blocked attempt, or it
    switched language right after the block. A switch of language right after a block by
    an attempt that is itself blocked or reviewed is a probe too. Only blocks and reviews in
    ``categories`` count: rewording an adult prompt the platform refuses is not probing.
    Probing is detected at
    ``min_probes`` probes in the window. One honest rewording after a false block shows only
    the near-duplicate sign, so it is not a probe.
    """

    categories: tuple[Category, ...] = (Category.SEXUAL_MINORS,)
    window_minutes: float = Field(60, gt=0)
    similarity: float = Field(0.5, gt=0, le=1)
    min_probes: int = Field(1, ge=1, le=100)
    min_containment_shingles: int = Field(12, ge=1)


class Reuse(_Strict):
    """Cross-account reuse: prompts blocked as ``sexual_minors`` are fingerprinted into a
    shared index; a near-duplicate sent by another account is recognised on its first try.
    Recognition adds a ``blocked_prompt_reuse`` signal and raises the account's risk; it
    does not block by itself (the prompt's own reading does that)."""

    similarity: float = Field(0.6, gt=0, le=1)


class PromptBank(_Strict):
    """The learned prompt bank: a prompt whose *output* was blocked as ``sexual_minors``
    becomes a blocked pattern; the same or a near-duplicate prompt (similarity >=
    ``similarity``) is blocked before generation for every account."""

    similarity: float = Field(0.8, gt=0, le=1)


class BandThresholds(_Strict):
    block: float = Field(gt=0, le=1)
    review: float = Field(gt=0, le=1)

    @model_validator(mode="after")
    def _order(self) -> BandThresholds:
        if self.review > self.block:
            raise ValueError("review threshold must not exceed the block threshold")
        return self


class RiskBand(_Strict):
    """From ``min_risk`` upwards, prompt and image checks use ``thresholds`` (never looser
    than the policy's own: the stricter of the two applies)."""

    name: str = Field(min_length=1, max_length=40)
    min_risk: float = Field(ge=0, le=1)
    thresholds: BandThresholds


class Risk(_Strict):
    """A risk score in 0..1 that halves every ``half_life_hours``. Each event adds its
    increment the way independent probabilities combine: ``r = 1 - (1 - r)(1 - inc)``."""

    half_life_hours: float = Field(7 * 24, gt=0)
    block: float = Field(0.35, ge=0, le=1)
    review: float = Field(0.05, ge=0, le=1)
    probing: float = Field(0.4, ge=0, le=1)
    reuse: float = Field(0.3, ge=0, le=1)
    coded_abuse: float = Field(1.0, ge=0, le=1)
    bank_match: float = Field(0.6, ge=0, le=1)
    bands: tuple[RiskBand, ...] = (
        RiskBand(name="elevated", min_risk=0.3,
                 thresholds=BandThresholds(block=0.5, review=0.3)),
        RiskBand(name="high", min_risk=0.6,
                 thresholds=BandThresholds(block=0.45, review=0.25)),
    )  # fmt: skip

    @field_validator("bands")
    @classmethod
    def _sorted(cls, bands: tuple[RiskBand, ...]) -> tuple[RiskBand, ...]:
        return tuple(sorted(bands, key=lambda b: b.min_risk))

    def band(self, risk: float) -> RiskBand | None:
        """The highest band whose ``min_risk`` the score reaches (None: ordinary)."""
        found = None
        for b in self.bands:
            if risk >= b.min_risk and b.min_risk > 0:
                found = b
        return found


class JurisdictionRule(_Strict):
    """Overrides for one jurisdiction (ISO 3166-1 alpha-2 code, e.g. ``ES``)."""

    minimum_generation_age: int | None = Field(None, ge=0, le=25)
    features: dict[Feature, AgeTier] = Field(default_factory=dict)


class AgeAssurance(_Strict):
    """Minimum age tier per feature (and per jurisdiction), and the age under which a known
    minor cannot use image generation at all."""

    minimum_generation_age: int = Field(16, ge=0, le=25)
    features: dict[Feature, AgeTier] = Field(
        default_factory=lambda: {
            Feature.TEXT_TO_IMAGE: AgeTier.UNKNOWN,
            Feature.IMAGE_EDIT: AgeTier.UNKNOWN,
            Feature.EDIT_REAL_PERSON: AgeTier.VERIFIED_ADULT,
            Feature.IMAGE_OF_PERSON: AgeTier.UNKNOWN,
        }
    )
    jurisdictions: dict[str, JurisdictionRule] = Field(default_factory=dict)
    step_up_requires: AgeTier = AgeTier.VERIFIED_ADULT

    @field_validator("jurisdictions")
    @classmethod
    def _codes(cls, v: dict[str, JurisdictionRule]) -> dict[str, JurisdictionRule]:
        for code in v:
            if not (len(code) == 2 and code.isascii() and code.isalpha() and code.isupper()):
                raise ValueError(f"jurisdiction {code!r} must be an upper-case ISO 3166 code")
        return v

    @field_validator("step_up_requires")
    @classmethod
    def _not_minor(cls, v: AgeTier) -> AgeTier:
        if v in (AgeTier.MINOR, AgeTier.UNKNOWN):
            raise ValueError("step_up_requires must be a tier of assurance above unknown")
        return v

    def minimum_tier(self, feature: Feature, jurisdiction: str | None) -> AgeTier:
        rule = self.jurisdictions.get(jurisdiction or "")
        if rule and feature in rule.features:
            return rule.features[feature]
        return self.features.get(feature, AgeTier.UNKNOWN)

    def minimum_age(self, jurisdiction: str | None) -> int:
        rule = self.jurisdictions.get(jurisdiction or "")
        if rule and rule.minimum_generation_age is not None:
            return rule.minimum_generation_age
        return self.minimum_generation_age


class AccountsPolicy(_Strict):
    """Everything the accounts area decides, as the ``accounts:`` section of the policy."""

    escalation: tuple[EscalationRule, ...] = Field(default_factory=_default_ladder)
    probing: Probing = Probing()
    reuse: Reuse = Reuse()
    prompt_bank: PromptBank = PromptBank()
    risk: Risk = Risk()
    age_assurance: AgeAssurance = AgeAssurance()
