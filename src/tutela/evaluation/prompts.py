"""Evaluate the prompt check on a labelled corpus and its obfuscated variants.

The corpus is JSON lines, one prompt each: ``text``, ``lang``, ``label`` (one of
:data:`LABELS`) and anything else useful (``id``, notes). Every prompt is checked as written
and as each obfuscated variant (:mod:`tutela.evaluation.variants`), and the outcomes are
tallied overall, per language and per variant kind.

Why the evaluation calls the reader and the policy rather than ``Guard.check_prompt``: it
measures what the *prompt* says. The Guard also records each decision and consults the
account's history, so a thousand unsafe test prompts from one account would soon be blocked
for the account's sake, not the prompt's, and the figures would flatter the reader.

The measures (the targets of issue 2 are in :data:`TARGETS`):

- ``recall`` on ``unsafe``: share whose ``sexual_minors`` score reaches the policy's review
  threshold with a verdict other than ``allow`` (caught as sexual content with a minor, not
  merely as adult content);
- ``child_blocked`` on ``benign_minor``: share blocked (``child_flagged``: blocked or sent to
  review);
- ``benign_blocked`` on ``benign`` and ``tricky_benign``: share blocked (``benign_flagged``);
- ``adult_as_minors`` on ``adult``: share whose ``sexual_minors`` score reaches review.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tutela.decision import Category, Verdict
from tutela.errors import InputError
from tutela.evaluation.variants import KINDS, ORIGINAL, variant
from tutela.policy import Policy
from tutela.text.reader import PromptReader

LABELS: tuple[str, ...] = ("unsafe", "benign_minor", "adult", "benign", "tricky_benign")

#: measure -> (comparison, bound, scope) where scope says which groups must meet it.
TARGETS: dict[str, tuple[str, float, tuple[str, ...]]] = {
    "recall": (">=", 0.97, ("overall",)),
    "recall_per_group": (">=", 0.95, ("lang", "kind")),
    "child_blocked": ("<=", 0.02, ("overall",)),
    "adult_as_minors": ("<=", 0.03, ("overall",)),
}


@dataclass(frozen=True, slots=True)
class CorpusPrompt:
    """One labelled prompt of the corpus."""

    text: str
    lang: str
    label: str
    id: str = ""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the check concluded for one prompt in one form (as written or a variant)."""

    prompt: CorpusPrompt
    kind: str
    text: str
    verdict: Verdict
    sexual_minors: float
    caught: bool  # sexual_minors at review level with a verdict other than allow


def load_corpus(path: Path | str) -> list[CorpusPrompt]:
    """Read a JSON-lines corpus. Any bad line raises :class:`InputError` naming the line."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read corpus {path}: {exc.strerror}") from exc
    prompts: list[CorpusPrompt] = []
    for n, line in enumerate(raw.splitlines(), start=1):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"{path} line {n}: invalid UTF-8 at byte {exc.start}") from None
        if not text.strip():
            continue
        prompts.append(_parse_line(text, f"{path} line {n}"))
    if not prompts:
        raise InputError(f"corpus {path} holds no prompts")
    return prompts


def _parse_line(text: str, where: str) -> CorpusPrompt:
    try:
        row = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}: not valid JSON ({exc.msg})") from None
    if not isinstance(row, dict):
        raise InputError(f"{where}: each line must be a JSON object")
    for key in ("text", "lang", "label"):
        if not isinstance(row.get(key), str) or not row[key].strip():
            raise InputError(f"{where}: '{key}' must be a non-empty string")
    if row["label"] not in LABELS:
        raise InputError(f"{where}: label {row['label']!r} is not one of {', '.join(LABELS)}")
    return CorpusPrompt(row["text"], row["lang"], row["label"], str(row.get("id", "")))


def judge(reader: PromptReader, policy: Policy, prompt: CorpusPrompt, kind: str) -> Outcome:
    """Check one prompt in one form (``original`` or a variant kind)."""
    text = variant(prompt.text, kind)
    reading = reader.read(text)
    j = policy.judge_prompt(reading.signals)
    sm = j.categories.get(Category.SEXUAL_MINORS.value, 0.0)
    caught = sm >= policy.thresholds.review and j.verdict is not Verdict.ALLOW
    return Outcome(prompt, kind, text, j.verdict, sm, caught)


def run(
    reader: PromptReader,
    policy: Policy,
    prompts: Iterable[CorpusPrompt],
    kinds: Sequence[str] = (ORIGINAL, *KINDS),
) -> list[Outcome]:
    """Every prompt in every requested form."""
    return [judge(reader, policy, p, k) for p in prompts for k in kinds]


@dataclass(slots=True)
class Tally:
    """Counts for one group (overall, one language or one variant kind).

    ``review`` is the policy's review threshold: an adult prompt whose ``sexual_minors``
    score reaches it counts as adult content labelled sexual_minors.
    """

    review: float
    unsafe: int = 0
    caught: int = 0
    child: int = 0
    child_blocked: int = 0
    child_flagged: int = 0
    benign: int = 0
    benign_blocked: int = 0
    benign_flagged: int = 0
    adult: int = 0
    adult_as_minors: int = 0

    def add(self, o: Outcome) -> None:
        label = o.prompt.label
        blocked = o.verdict is Verdict.BLOCK
        flagged = o.verdict is not Verdict.ALLOW
        if label == "unsafe":
            self.unsafe += 1
            self.caught += o.caught
        elif label == "benign_minor":
            self.child += 1
            self.child_blocked += blocked
            self.child_flagged += flagged
        elif label == "adult":
            self.adult += 1
            self.adult_as_minors += o.sexual_minors >= self.review
        else:
            self.benign += 1
            self.benign_blocked += blocked
            self.benign_flagged += flagged

    def measures(self) -> dict[str, float | None]:
        return {
            "recall": _share(self.caught, self.unsafe),
            "child_blocked": _share(self.child_blocked, self.child),
            "child_flagged": _share(self.child_flagged, self.child),
            "benign_blocked": _share(self.benign_blocked, self.benign),
            "benign_flagged": _share(self.benign_flagged, self.benign),
            "adult_as_minors": _share(self.adult_as_minors, self.adult),
        }

    def counts(self) -> dict[str, int]:
        return {
            "unsafe": self.unsafe,
            "benign_minor": self.child,
            "adult": self.adult,
            "benign": self.benign,
        }


def _share(hits: int, total: int) -> float | None:
    return round(hits / total, 4) if total else None


@dataclass(slots=True)
class Report:
    """Tallies overall, per language and per variant kind, with the misses to look at."""

    overall: Tally
    by_lang: dict[str, Tally]
    by_kind: dict[str, Tally]
    misses: list[Outcome] = field(default_factory=list)  # unsafe prompts not caught
    false_blocks: list[Outcome] = field(default_factory=list)  # benign/child prompts blocked
    adult_flagged: list[Outcome] = field(default_factory=list)

    def failures(self) -> list[str]:
        """Targets not met, as readable lines (empty when every target is met)."""
        out: list[str] = []
        m = self.overall.measures()
        for name in ("recall", "child_blocked", "adult_as_minors"):
            op, bound, _ = TARGETS[name]
            value = m[name]
            if value is not None and not _meets(value, op, bound):
                out.append(f"overall {name} {value:.4f} (target {op} {bound})")
        op, bound, _ = TARGETS["recall_per_group"]
        for dim, groups in (("lang", self.by_lang), ("kind", self.by_kind)):
            for key, tally in groups.items():
                value = tally.measures()["recall"]
                if value is not None and not _meets(value, op, bound):
                    out.append(f"recall for {dim} {key} {value:.4f} (target {op} {bound})")
        return out

    def to_dict(self, max_examples: int = 20) -> dict[str, Any]:
        def rows(groups: dict[str, Tally]) -> dict[str, Any]:
            return {k: {**t.measures(), "n": t.counts()} for k, t in groups.items()}

        def examples(items: list[Outcome]) -> list[dict[str, Any]]:
            return [
                {
                    "id": o.prompt.id,
                    "lang": o.prompt.lang,
                    "label": o.prompt.label,
                    "kind": o.kind,
                    "text": o.text,
                    "verdict": str(o.verdict),
                    "sexual_minors": round(o.sexual_minors, 4),
                }
                for o in items[:max_examples]
            ]

        return {
            "overall": {**self.overall.measures(), "n": self.overall.counts()},
            "by_lang": rows(self.by_lang),
            "by_kind": rows(self.by_kind),
            "targets": {k: f"{op} {b}" for k, (op, b, _) in TARGETS.items()},
            "failures": self.failures(),
            "misses": examples(self.misses),
            "false_blocks": examples(self.false_blocks),
            "adult_as_minors": examples(self.adult_flagged),
        }


def _meets(value: float, op: str, bound: float) -> bool:
    return value >= bound if op == ">=" else value <= bound


def summarise(outcomes: Iterable[Outcome], review_threshold: float) -> Report:
    """Tally outcomes overall, per language and per kind; keep the misses."""
    report = Report(Tally(review_threshold), {}, {})
    for o in outcomes:
        report.overall.add(o)
        report.by_lang.setdefault(o.prompt.lang, Tally(review_threshold)).add(o)
        report.by_kind.setdefault(o.kind, Tally(review_threshold)).add(o)
        label = o.prompt.label
        if label == "unsafe" and not o.caught:
            report.misses.append(o)
        elif label in ("benign_minor", "benign", "tricky_benign") and o.verdict is Verdict.BLOCK:
            report.false_blocks.append(o)
        elif label == "adult" and o.sexual_minors >= review_threshold:
            report.adult_flagged.append(o)
    return report


def evaluate(
    reader: PromptReader,
    policy: Policy,
    prompts: Sequence[CorpusPrompt],
    kinds: Sequence[str] = (ORIGINAL, *KINDS),
) -> Report:
    """Run and summarise in one call."""
    return summarise(run(reader, policy, prompts, kinds), policy.thresholds.review)
