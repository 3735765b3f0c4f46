"""The ``image:`` section of the policy: the knobs of the image judging rules.

Why a model of its own: the numbers here (what counts as a minor, the safety margin for the
age estimator's error, how strong a nudity detection must be) are policy, not code, and a
platform must be able to read and tune them in its YAML. What they may *not* do is weaken
the ``sexual_minors`` rules below what the law and DESIGN.md require, so the validators
refuse a minor age under 18 and a margin under the minor age.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ImagePolicy(BaseModel):
    """Thresholds of :meth:`tutela.policy.Policy.judge_image` (see docs/image-guard.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    minor_age: int = Field(18, ge=18, le=21)
    """A face whose apparent age is under this is a minor."""
    age_margin: int = Field(25, ge=18, le=40)
    """Apparent ages from ``minor_age`` up to (not including) this are *possible* minors:
    with nudity the image is blocked as a precaution and sent to review, never reported
    automatically. It covers the estimator's error of several years."""
    nudity_score: float = Field(0.5, gt=0, le=1)
    """Exposed intimate parts at or above this score count as nudity."""
    strict_nudity_score: float = Field(0.25, gt=0, le=1)
    """With a minor signal (the prompt mentions a child, or a face under the margin), any
    exposed intimate part from this score counts: minor_present makes output checks strict."""
    report_apparent_minors: bool = True
    """Flag for the reporting queue when nudity meets a face under ``minor_age`` (or a prompt
    about a child). Known-material hash matches are always flagged."""

    @model_validator(mode="after")
    def _ordered(self) -> ImagePolicy:
        if self.age_margin < self.minor_age:
            raise ValueError("image.age_margin must not be below image.minor_age")
        if self.strict_nudity_score > self.nudity_score:
            raise ValueError("image.strict_nudity_score must not exceed image.nudity_score")
        return self
