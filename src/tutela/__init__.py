"""Tutela: a child-safety guard for platforms that generate or edit images with AI.

The public face: :class:`Guard` (with :class:`PromptCheck` for its batches of prompt checks)
and the vocabulary (:class:`Decision`, :class:`Verdict`, :class:`Category`, :class:`Signal`,
:class:`AccountAction`).
"""

from tutela.decision import AccountAction, Category, CheckKind, Decision, Signal, Verdict
from tutela.errors import ImageError, InputError, PromptError, TutelaError
from tutela.guard import Guard, PromptCheck

__all__ = [
    "AccountAction",
    "Category",
    "CheckKind",
    "Decision",
    "Guard",
    "ImageError",
    "InputError",
    "PromptCheck",
    "PromptError",
    "Signal",
    "TutelaError",
    "Verdict",
]
__version__ = "0.1.0"
