"""Accounts: memory of who keeps trying.

Account state (age tier, decaying risk, strikes, the action in force), the monitor that every
decision updates (sliding windows of blocks, iterative probing, cross-account reuse of blocked
prompts, the learned prompt bank), the escalation ladder and its enforcement, and age
assurance. See ``docs/accounts.md``.

This package's ``__init__`` imports nothing on purpose: :mod:`tutela.policy` imports
:mod:`tutela.accounts.policy`, and the monitor imports :mod:`tutela.policy`; keeping the
package root empty keeps that a line, not a cycle.
"""
