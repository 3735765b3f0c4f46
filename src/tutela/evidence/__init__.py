"""Evidence and reports: what shows, to a user, a regulator or a prosecutor, what was done.

- :mod:`~tutela.evidence.merkle`: the RFC 6962/9162 Merkle tree (pure functions, proofs);
- :mod:`~tutela.evidence.log`: the append-only audit log on the database, signed checkpoints
  (:mod:`~tutela.evidence.signing`), verification;
- :mod:`~tutela.evidence.vault`: encrypted evidence with custody, holds and purge; keys in
  :mod:`~tutela.evidence.keyring` (local key file or a KMS), written via
  :mod:`~tutela.evidence.secretfile`;
- :mod:`~tutela.evidence.ncmec` / :mod:`~tutela.evidence.ncmec_schema` /
  :mod:`~tutela.evidence.ncmec_client`: CyberTipline XML, its checker, its client;
- :mod:`~tutela.evidence.dsa` / :mod:`~tutela.evidence.dsa_client`: DSA statements of reasons;
- :mod:`~tutela.evidence.transparency`: the transparency report (JSON, HTML);
- :mod:`~tutela.evidence.history`: decisions and their reviews, as the log remembers them;
- :mod:`~tutela.evidence.service`: building all of it from the settings, and the Guard hook.

Tables in :mod:`~tutela.evidence.models` (migration ``0004_evidence``). Guide: docs/evidence.md.
"""
