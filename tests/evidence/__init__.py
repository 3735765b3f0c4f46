"""Tests of the evidence area: audit log, vault, reports."""
