"""Exceptions Tutela raises on purpose. Each says what was wrong in words a caller can act on.

Everything raised for bad *input* derives from :class:`InputError`, so the command line can
exit 2 and the HTTP service can answer 4xx without knowing each case.
"""

from __future__ import annotations


class TutelaError(Exception):
    """Base of every error Tutela raises deliberately."""


class InputError(TutelaError, ValueError):
    """The caller's input is unusable (empty, too large, malformed). Nothing was changed."""


class PromptError(InputError):
    """The prompt text cannot be checked: empty, over the maximum length, or not text."""


class ImageError(InputError):
    """The image cannot be decoded safely: wrong type, truncated, oversized, a bomb."""


class ConfigError(TutelaError):
    """The configuration or policy file is invalid."""


class StoreUnavailable(TutelaError):
    """The database cannot be reached. Callers must fail closed, never allow unchecked."""


class DetectorError(TutelaError):
    """A detector failed or timed out. The policy turns this into block (or review)."""
