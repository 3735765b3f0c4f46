"""What the image flows hand back, and how a judgement of an image becomes a Decision.

``OutputResult`` exists so the output flow can return more than a verdict: when an output is
allowed, the provenance step (issue 6) puts the marked image — invisible watermark, then the
signed C2PA manifest — in ``image_bytes``; until then, and for every blocked output, it is
``None`` and the caller must not publish the image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tutela.decision import CheckKind, Decision, Signal
from tutela.image.inspect import Inspection
from tutela.policy import Judgement


@dataclass(slots=True)
class OutputResult:
    """The decision on a generated image, and the image to publish when it is allowed."""

    decision: Decision
    image_bytes: bytes | None = None
    """The marked image (provenance) to publish instead of the original; None when blocked
    or when no marking step is configured."""
    media_type: str | None = None
    generation: Any = None
    """The generation reference the caller passed (id or mapping), for provenance."""
    provenance_id: str | None = None
    """Tutela's generation id for the marked image (what a trace of it returns)."""
    inspection: Inspection | None = None

    @property
    def allowed(self) -> bool:
        return self.decision.allowed

    def to_dict(self) -> dict[str, Any]:
        out = self.decision.to_dict()
        out["image"] = self.inspection.summary() if self.inspection else None
        out["marked"] = self.image_bytes is not None
        out["generation_id"] = self.provenance_id
        return out


def image_decision(
    judgement: Judgement,
    inspection: Inspection,
    kind: CheckKind,
    account: str | None,
    prompt_signals: Sequence[Signal] = (),
    language: str | None = None,
) -> Decision:
    """The decision for an image flow: the judgement plus every signal, prompt first."""
    return Decision(
        verdict=judgement.verdict,
        categories=judgement.categories,
        reasons=judgement.reasons + [f"image: {n}" for n in inspection.notes],
        signals=[*prompt_signals, *inspection.signals],
        kind=kind,
        account=account,
        report=judgement.report,
        language=language,
    )
