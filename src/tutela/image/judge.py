"""The image judging rules: detector, hash and prompt signals in, a :class:`Judgement` out.

This is the policy's image half (``Policy.judge_image`` calls :func:`judge_image`); it does
no I/O and sees nothing but signals, so every rule is tested on recorded signals. The rules,
strongest first (docs/image-guard.md explains each):

1. a match in a ``block`` hash bank, not suppressed by a ``false_positive`` bank → block,
   ``sexual_minors``, flagged for reporting;
2. exposed nudity with a face of apparent age under ``image.minor_age`` → block,
   ``sexual_minors``;
3. exposed nudity with a face of apparent age under ``image.age_margin`` → block as a
   precaution, sent to review as a possible minor, never reported automatically;
4. the prompt said a child is present and the image shows any exposed nudity → block,
   ``sexual_minors``; an external classifier's ``csam`` score acts through the thresholds;
5. edits: a sexualising instruction on a photo with a face → ``sexualised_real_person``
   (or ``sexual_minors`` when that face may be a minor or the prompt names a child);
6. nudity without any minor signal → ``sexual_adult``, acted on as ``actions`` say;
7. a detector needed for ``sexual_minors`` failed → ``detector_failure`` (block or review),
   never allow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tutela.decision import Category, Signal, Verdict, strictest

if TYPE_CHECKING:
    from tutela.policy import Judgement, Policy

SM = Category.SEXUAL_MINORS.value
SRP = Category.SEXUALISED_REAL_PERSON.value
SA = Category.SEXUAL_ADULT.value
MP = Category.MINOR_PRESENT.value


@dataclass(slots=True)
class _Face:
    age: int
    box: Any
    detector: str


@dataclass(slots=True)
class _Seen:
    """What the image signals say, gathered once so each rule reads in a line or two."""

    nudity: float = 0.0
    nudity_parts: list[str] = field(default_factory=list)
    faces: list[_Face] = field(default_factory=list)
    face_boxes: int = 0
    csam: float = 0.0
    block_matches: list[Signal] = field(default_factory=list)
    suppressors: list[Signal] = field(default_factory=list)
    failures: list[Signal] = field(default_factory=list)

    @classmethod
    def of(cls, signals: Sequence[Signal]) -> _Seen:
        seen = cls()
        for s in signals:
            ev = s.evidence
            if s.kind == "nudity":
                seen.nudity = max(seen.nudity, s.score)
                seen.nudity_parts += [
                    str(p.get("label", "?")).lower() for p in ev.get("parts", ())
                ]
            elif s.kind == "face_age":
                seen.faces.append(_Face(int(ev["age"]), ev.get("box"), s.detector))
            elif s.kind == "face":
                seen.face_boxes += 1
            elif s.kind == "csam":
                seen.csam = max(seen.csam, s.score)
            elif s.kind == "hash_match":
                bank_kind = ev.get("bank_kind")
                if bank_kind == "block":
                    seen.block_matches.append(s)
                elif bank_kind == "false_positive":
                    seen.suppressors.append(s)
            elif s.kind == "detector_error" and ev.get("needed_for_minors", True):
                seen.failures.append(s)
        return seen


@dataclass(slots=True)
class _Outcome:
    """The judgement being built: rules raise the verdict and the scores, never lower them."""

    verdict: Verdict = Verdict.ALLOW
    categories: dict[str, float] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    report: bool = False

    def score(self, category: str, value: float) -> None:
        self.categories[category] = max(self.categories.get(category, 0.0), value)

    def act(self, verdict: Verdict, reason: str) -> None:
        self.verdict = strictest(self.verdict, verdict)
        self.reasons.append(reason)


def judge_image(
    policy: Policy,
    signals: Sequence[Signal],
    *,
    prompt_signals: Sequence[Signal] = (),
    edit: bool = False,
) -> Judgement:
    """Judge an image (an output, an upload, or the source of an edit).

    ``prompt_signals`` are the prompt reader's signals for the prompt that produced the
    output, or the edit instruction. With ``edit=True`` the instruction's own judgement
    counts in full (the edit check is the prompt check plus what the source shows); for
    outputs only its ``sexual_minors`` and minor signals carry over, since the prompt was
    already judged before generation.
    """
    from tutela.policy import Judgement

    rules = policy.image
    seen = _Seen.of(signals)
    out = _Outcome()

    prompt = policy.judge_prompt(prompt_signals) if prompt_signals else None
    prompt_best = _best(prompt_signals)
    prompt_minor = prompt_best.get("minor", 0.0) >= policy.thresholds.review
    if prompt is not None:
        _carry_prompt(out, prompt, whole=edit)

    minors = [f for f in seen.faces if f.age < rules.minor_age]
    possible = [f for f in seen.faces if rules.minor_age <= f.age < rules.age_margin]
    minor_context = prompt_minor or bool(minors) or bool(possible)
    floor = rules.strict_nudity_score if minor_context else rules.nudity_score
    nude = seen.nudity >= floor and seen.nudity > 0
    parts = ", ".join(sorted(set(seen.nudity_parts))) or "exposed intimate parts"

    # 1. known material
    if seen.block_matches and seen.suppressors:
        out.reasons.append(
            f"{len(seen.block_matches)} block-bank match(es) suppressed by false-positive "
            f"bank {seen.suppressors[0].evidence.get('bank', '?')!s}"
        )
    elif seen.block_matches:
        m = min(seen.block_matches, key=lambda s: s.evidence.get("distance", 256))
        out.score(SM, 1.0)
        out.report = True
        out.act(
            Verdict.BLOCK,
            f"matches known abuse material in hash bank {m.evidence.get('bank', '?')!s} "
            f"(PDQ distance {m.evidence.get('distance', '?')})",
        )

    # 2. and 3. nudity with an apparent minor
    if nude and minors:
        youngest = min(f.age for f in minors)
        out.score(SM, max(seen.nudity, 0.9))
        out.report = out.report or rules.report_apparent_minors
        out.act(
            Verdict.BLOCK,
            f"{parts} (score {seen.nudity:.2f}) with a face of apparent age {youngest}, "
            f"under {rules.minor_age}",
        )
    elif nude and possible and not prompt_minor:
        youngest = min(f.age for f in possible)
        # The verdict is decided by the rule; the score must not read lower than a block.
        out.score(SM, max(seen.nudity, policy.thresholds.block))
        out.act(
            Verdict.BLOCK,
            f"possible minor: {parts} (score {seen.nudity:.2f}) with a face of apparent age "
            f"{youngest}, under the {rules.age_margin}-year margin — blocked as a precaution "
            "and sent to review; not reported automatically",
        )

    # 4. the prompt named a child and the image shows nudity; a classifier's own CSAM score
    if nude and prompt_minor:
        out.score(SM, max(seen.nudity, 0.9))
        out.report = out.report or rules.report_apparent_minors
        out.act(Verdict.BLOCK, f"the prompt describes a minor and the image shows {parts}")
    if seen.csam > 0:
        out.score(SM, seen.csam)
        if seen.csam >= policy.thresholds.review:
            out.reasons.append(f"classifier scores the image as abuse material ({seen.csam:.2f})")

    # 5. edits of photos of real people
    if edit and prompt is not None:
        sexualising = max(
            prompt_best.get("sexual", 0.0),
            prompt_best.get("undress", 0.0),
            prompt_best.get("suggestive", 0.0),
        )
        has_face = bool(seen.faces) or seen.face_boxes > 0
        if sexualising >= policy.thresholds.review and has_face:
            if minors or possible or prompt_minor:
                out.score(SM, max(sexualising, 0.9))
                out.act(Verdict.BLOCK, "sexualising edit of a photo showing a possible minor")
            else:
                out.score(SRP, sexualising)
                out.reasons.append("sexualising edit of a photo of a real person")

    # 6. nudity without a minor signal
    if nude and not minor_context:
        out.score(SA, seen.nudity)
        out.reasons.append(f"adult nudity: {parts} (score {seen.nudity:.2f})")
    if minors or possible:
        out.score(MP, 1.0 if minors else 0.5)
    # A finding about a minor or a real person subsumes the plain "adult content" and
    # "a child appears" readings of the same request (as judge_prompt does), so the top
    # category names what matters.
    review = policy.thresholds.review
    if out.categories.get(SM, 0.0) >= review:
        out.categories.pop(MP, None)
    if max(out.categories.get(SM, 0.0), out.categories.get(SRP, 0.0)) >= review:
        out.categories.pop(SA, None)

    thresholded = policy._verdict(dict(out.categories), [])
    out.verdict = strictest(out.verdict, thresholded.verdict)

    # 7. fail closed
    for failure in seen.failures:
        fallback = Verdict.BLOCK if policy.detector_failure == "block" else Verdict.REVIEW
        out.act(
            fallback,
            f"detector {failure.detector} failed ({failure.evidence.get('error', 'error')}); "
            "failing closed",
        )

    categories = {k: round(v, 4) for k, v in out.categories.items() if v > 0}
    return Judgement(out.verdict, categories, out.reasons, report=out.report)


def _carry_prompt(out: _Outcome, prompt: Judgement, *, whole: bool) -> None:
    """Fold the prompt's own judgement in: all of it for edits, sexual_minors for outputs."""
    if whole:
        for k, v in prompt.categories.items():
            out.score(k, v)
        out.verdict = strictest(out.verdict, prompt.verdict)
        out.reasons += [f"prompt: {r}" for r in prompt.reasons]
        return
    sm = prompt.categories.get(SM, 0.0)
    if sm > 0:
        out.score(SM, sm)
        out.reasons += [f"prompt: {r}" for r in prompt.reasons]


def _best(signals: Sequence[Signal]) -> dict[str, float]:
    best: dict[str, float] = {}
    for s in signals:
        best[s.kind] = max(best.get(s.kind, 0.0), s.score)
    return best
