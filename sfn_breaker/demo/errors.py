"""The demo's one error: ``DemoError``, raised when the demo cannot run as asked."""

from __future__ import annotations

from sfn_breaker.errors import BreakerError


class DemoError(BreakerError):
    """The demo cannot run as asked (bad options, no payment service); one line for a person.

    A ``BreakerError``, so that the CLI reports it like the client's own errors."""
