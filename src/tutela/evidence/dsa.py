"""EU Digital Services Act statements of reasons (Art. 17, Art. 24(5)) for the Transparency
Database, one per restriction, built from the audit log.

Which decisions: every ``block`` still standing (an overturned one restricted nothing in the
end). What goes in: only fixed wording chosen by category and check kind, never the prompt,
the matched terms, the reasons text or the account: the database is public and Art. 24(5)
forbids personal data. The ``puid`` is the decision id, a random token that means nothing
outside the platform.

Every statement is validated against the bundled schema (a copy of
``specs/dsa-statement-of-reasons.schema.json``) before it leaves this module, so an invalid
one is a bug that fails loudly here, not a 422 from the Commission later.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

from tutela.decision import AccountAction, Category, CheckKind
from tutela.errors import TutelaError
from tutela.evidence.history import Case, cases
from tutela.evidence.log import AuditLog

EEA = (
    "AT",
    "BE",
    "BG",
    "CY",
    "CZ",
    "DE",
    "DK",
    "EE",
    "ES",
    "FI",
    "FR",
    "GR",
    "HR",
    "HU",
    "IE",
    "IS",
    "IT",
    "LI",
    "LT",
    "LU",
    "LV",
    "MT",
    "NL",
    "NO",
    "PL",
    "PT",
    "RO",
    "SE",
    "SI",
    "SK",
)
BATCH_MAX = 100


class StatementInvalid(TutelaError):
    """A built statement does not validate against the schema (a bug in the mapping)."""


@cache
def schema() -> dict[str, Any]:
    text = (
        resources.files("tutela.evidence")
        .joinpath("schemas/dsa-statement-of-reasons.schema.json")
        .read_text(encoding="utf-8")
    )
    return json.loads(text)


@cache
def validator() -> Draft202012Validator:
    return Draft202012Validator(schema(), format_checker=FormatChecker())


def problems(statement: dict[str, Any]) -> list[str]:
    """Schema errors for one statement ([] = valid)."""
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
        for e in validator().iter_errors(statement)
    ]


# Per category: (ground, statement category, keywords, legal ground or ToS clause, explanation)
_ILLEGAL = "DECISION_GROUND_ILLEGAL_CONTENT"
_INCOMPATIBLE = "DECISION_GROUND_INCOMPATIBLE_CONTENT"
_MAPPING: dict[str, tuple[str, str, list[str], str, str]] = {
    Category.SEXUAL_MINORS: (
        _ILLEGAL,
        "STATEMENT_CATEGORY_PROTECTION_OF_MINORS",
        ["KEYWORD_CHILD_SEXUAL_ABUSE_MATERIAL"],
        "Directive 2011/93/EU, Articles 2(c) and 5 (child sexual abuse material), "
        "as transposed into national criminal law",
        "Automated safeguards assessed the request or image as sexual content involving a "
        "minor. Such material is illegal in every Member State and is never produced or shown.",
    ),
    Category.SEXUALISED_REAL_PERSON: (
        _ILLEGAL,
        "STATEMENT_CATEGORY_CYBER_VIOLENCE",
        ["KEYWORD_NON_CONSENSUAL_MATERIAL_DEEPFAKE"],
        "Directive (EU) 2024/1385, Article 5 (producing or manipulating material that makes "
        "it appear a person is engaged in sexual activities, without that person's consent)",
        "Automated safeguards assessed the request as a sexualising edit of a photograph of a "
        "real person, made without any indication of that person's consent.",
    ),
    Category.SEXUAL_ADULT: (
        _INCOMPATIBLE,
        "STATEMENT_CATEGORY_OTHER_VIOLATION_TC",
        ["KEYWORD_ADULT_SEXUAL_MATERIAL"],
        "Terms of service: sexual content is not permitted on this service",
        "Automated safeguards assessed the request or image as adult sexual content, which "
        "the terms of service of this service do not allow.",
    ),
}
_FALLBACK = (
    _INCOMPATIBLE,
    "STATEMENT_CATEGORY_OTHER_VIOLATION_TC",
    ["KEYWORD_OTHER"],
    "Terms of service: safety restrictions on image generation",
    "The request was refused under the service's safety restrictions (for example an account "
    "restriction after repeated attempts to obtain prohibited content).",
)
_CONTENT_TYPES = {
    CheckKind.PROMPT: ["CONTENT_TYPE_TEXT"],
    CheckKind.EDIT: ["CONTENT_TYPE_IMAGE", "CONTENT_TYPE_TEXT"],
    CheckKind.OUTPUT: ["CONTENT_TYPE_IMAGE", "CONTENT_TYPE_SYNTHETIC_MEDIA"],
    CheckKind.UPLOAD: ["CONTENT_TYPE_IMAGE"],
}
_FOUND = {
    Category.SEXUAL_MINORS: "sexual content involving a minor",
    Category.SEXUALISED_REAL_PERSON: "a sexualising edit of a real person's photograph",
    Category.SEXUAL_ADULT: "adult sexual content",
}
_NOT_PRODUCED = "Generation refused: the requested image was not produced or delivered"


def statement(case: Case, *, territorial_scope: Iterable[str] = EEA) -> dict[str, Any]:
    """The statement of reasons for one blocked decision (validated; raises if invalid)."""
    d = case.decision
    kind = CheckKind(d.get("kind", "prompt"))
    category = case.top_category()
    ground, cat, keywords, legal, explanation = _MAPPING.get(category or "", _FALLBACK)
    if kind in (CheckKind.OUTPUT, CheckKind.EDIT) and category == Category.SEXUAL_MINORS:
        keywords = [*keywords, "KEYWORD_CHILD_SEXUAL_ABUSE_MATERIAL_DEEPFAKE"]
    decided_at = case.reviews[-1].at if case.reviews else case.at
    out: dict[str, Any] = {
        "decision_ground": ground,
        "category": cat,
        "category_specification": keywords,
        "content_type": _CONTENT_TYPES[kind],
        "content_date": _day(case.at),
        "application_date": _day(decided_at),
        "decision_facts": _facts(kind, category, case),
        "source_type": "SOURCE_VOLUNTARY",
        "automated_detection": "Yes",
        "automated_decision": (
            "AUTOMATED_DECISION_PARTIALLY" if case.manual else "AUTOMATED_DECISION_FULLY"
        ),
        "puid": case.id,
        "territorial_scope": sorted(set(territorial_scope)),
    }
    if kind in (CheckKind.PROMPT, CheckKind.EDIT, CheckKind.OUTPUT):
        out["decision_visibility"] = ["DECISION_VISIBILITY_OTHER"]
        out["decision_visibility_other"] = _NOT_PRODUCED
    else:
        out["decision_visibility"] = ["DECISION_VISIBILITY_CONTENT_REMOVED"]
    if d.get("account_action") == AccountAction.SUSPEND:
        out["decision_account"] = "DECISION_ACCOUNT_SUSPENDED"
    if ground == _ILLEGAL:
        out["illegal_content_legal_ground"] = legal
        out["illegal_content_explanation"] = explanation
    else:
        out["incompatible_content_ground"] = legal
        out["incompatible_content_explanation"] = explanation
        out["incompatible_content_illegal"] = "No"
    lang = str(d.get("language") or "").upper()
    if lang and lang in (schema()["properties"]["content_language"]["enum"]):
        out["content_language"] = lang
    errors = problems(out)
    if errors:
        raise StatementInvalid(f"statement for {case.id} is invalid: {'; '.join(errors)}")
    return out


def _facts(kind: CheckKind, category: str | None, case: Case) -> str:
    what = {
        CheckKind.PROMPT: "an image generation request",
        CheckKind.EDIT: "an image edit request",
        CheckKind.OUTPUT: "a generated image",
        CheckKind.UPLOAD: "an uploaded image",
    }[kind]
    found = _FOUND.get(category or "", "a safety restriction")
    facts = f"Automated checks of {what} found: {found}. The content was blocked."
    if case.manual:
        facts += " A human reviewer confirmed the decision."
    return facts


def _day(at: datetime) -> str:
    return date(at.year, at.month, at.day).isoformat()


def restrictions(
    log: AuditLog, since: datetime | None = None, until: datetime | None = None
) -> Iterator[Case]:
    """Blocked decisions in the period that no reviewer overturned."""
    for case in cases(log, since, until):
        if case.verdict == "block" and not case.overturned:
            yield case


def export(
    log: AuditLog,
    since: datetime | None = None,
    until: datetime | None = None,
    territorial_scope: Iterable[str] | None = None,
) -> Iterator[dict[str, Any]]:
    """Every statement for the period, in log order."""
    scope = list(territorial_scope or EEA)
    for case in restrictions(log, since, until):
        yield statement(case, territorial_scope=scope)


def batches(
    statements: Iterable[dict[str, Any]], size: int = BATCH_MAX
) -> Iterator[list[dict[str, Any]]]:
    """Bodies for the bulk endpoint: at most 100 statements each."""
    batch: list[dict[str, Any]] = []
    for s in statements:
        batch.append(s)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
