"""Turning an age-assurance provider's answer into a :class:`Verification`, or a clear error.

The API and the command line both take this input from outside, so both go through here:
one set of rules for what a provider's result may say.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tutela.accounts.state import Verification
from tutela.accounts.tiers import AgeTier
from tutela.errors import InputError

LEVELS = tuple(t.value for t in AgeTier if t is not AgeTier.UNKNOWN)
_CLOCK_SKEW = timedelta(minutes=5)


def _text(name: str, value: str | None, limit: int, required: bool = False) -> str | None:
    if value is None or not value.strip():
        if required:
            raise InputError(f"{name} is required")
        return None
    value = value.strip()
    if len(value) > limit or not value.isprintable():
        raise InputError(f"{name} must be printable text of at most {limit} characters")
    return value


def verification_from(
    *,
    level: str,
    method: str,
    verified_at: datetime,
    age_years: int | None = None,
    provider: str | None = None,
    jurisdiction: str | None = None,
    reference: str | None = None,
    now: datetime | None = None,
) -> Verification:
    """Validate a provider's result. ``level`` is the tier it establishes."""
    if level not in LEVELS:
        raise InputError(f"level must be one of {', '.join(LEVELS)}; got {level!r}")
    tier = AgeTier(level)
    if verified_at.tzinfo is None or verified_at.utcoffset() is None:
        raise InputError("the verification time must carry a time zone")
    now = now or datetime.now(UTC)
    if verified_at > now + _CLOCK_SKEW:
        raise InputError("the verification time is in the future")
    if age_years is not None and not 0 <= age_years <= 130:
        raise InputError("age must be between 0 and 130")
    if tier is AgeTier.VERIFIED_ADULT and age_years is not None and age_years < 18:
        raise InputError("a verified adult cannot be under 18; record level 'minor' instead")
    if tier is AgeTier.MINOR and age_years is not None and age_years >= 18:
        raise InputError("a minor cannot be 18 or older")
    code = _text("jurisdiction", jurisdiction, 2)
    if code is not None:
        code = code.upper()
        if len(code) != 2 or not code.isascii() or not code.isalpha():
            raise InputError("jurisdiction must be an ISO 3166-1 alpha-2 code, e.g. ES")
    return Verification(
        tier=tier,
        method=_text("method", method, 100, required=True) or "",
        verified_at=verified_at.astimezone(UTC),
        provider=_text("provider", provider, 200),
        age_years=age_years,
        jurisdiction=code,
        reference=_text("reference", reference, 200),
    )
