"""Age tiers and the features age assurance gates: the words the accounts policy speaks.

Tiers are ordered by how much assurance they carry (``unknown`` < ``self_declared`` <
``estimated`` < ``verified_adult``). ``minor`` stands apart: it is not "more" or "less"
assurance, it is a known fact that the person is a child, and it is judged by age.
"""

from __future__ import annotations

from enum import StrEnum


class AgeTier(StrEnum):
    """What the platform knows about the account holder's age, and how firmly."""

    UNKNOWN = "unknown"
    SELF_DECLARED = "self_declared"
    ESTIMATED = "estimated"
    VERIFIED_ADULT = "verified_adult"
    MINOR = "minor"


_ASSURANCE_RANK = {
    AgeTier.UNKNOWN: 0,
    AgeTier.SELF_DECLARED: 1,
    AgeTier.ESTIMATED: 2,
    AgeTier.VERIFIED_ADULT: 3,
}


def meets(tier: AgeTier, minimum: AgeTier) -> bool:
    """True when ``tier`` carries at least the assurance of ``minimum``.

    A known minor meets only the ``unknown`` minimum (ordinary features); the age rules
    (:class:`tutela.accounts.policy.AgeAssurance`) decide separately what a minor may use.
    """
    if tier is AgeTier.MINOR:
        return minimum is AgeTier.UNKNOWN
    if minimum is AgeTier.MINOR:
        return True
    return _ASSURANCE_RANK[tier] >= _ASSURANCE_RANK[minimum]


class Feature(StrEnum):
    """Platform features that age assurance and account actions can gate."""

    TEXT_TO_IMAGE = "text_to_image"
    """Ordinary generation from a text prompt."""
    IMAGE_EDIT = "image_edit"
    """Editing an uploaded image that shows no real person."""
    EDIT_REAL_PERSON = "edit_real_person"
    """Editing an uploaded photo that shows a real person."""
    IMAGE_OF_PERSON = "image_of_person"
    """Generating any image of a person (a platform may demand more assurance for it)."""
    UPLOAD = "upload"
    """Uploading or sharing an image (not generation: step-up and the age rule leave it)."""


GENERATION_FEATURES = frozenset(Feature) - {Feature.UPLOAD}
"""These features make images, so ``step_up`` and the under-age rule block them all."""
