"""What the report clients share: one error type for a refusal, one for an unreachable service.

Both clients (NCMEC, DSA) are off unless their URL is configured, send nothing they have not
validated, and turn every non-success answer into :class:`ReportRejected` with the service's
own code and text, so an operator sees why without reading HTTP traces.
"""

from __future__ import annotations

from tutela.errors import TutelaError


class ReportRejected(TutelaError):
    """The reporting service answered, and said no."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        body: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.body = body


class ReportServiceUnavailable(TutelaError):
    """The reporting service could not be reached (network error or time-out)."""
