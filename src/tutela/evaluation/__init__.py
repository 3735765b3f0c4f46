"""Evaluation: labelled corpora, obfuscated variants, and the measures the targets are set in."""
