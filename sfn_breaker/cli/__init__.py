"""``breaker``: call services through the circuit breaker and operate its circuits.

Exit codes: 0 success; 1 the breaker cannot be reached (no credentials, stack not deployed,
emulator not running, ...); 2 a bad request or bad usage (invalid JSON, unknown service, bad
option); 3 a fast fail: the service was not called (its circuit is open, or cannot be read
under a fail-fast policy); 4 the service failed or timed out on every attempt.

Where commands go (AWS, ``AWS_ENDPOINT_URL``, or the local emulator) is decided by
``sfn_breaker.config.resolve_target``.

The CLI needs Typer and Rich, which come with the ``cli`` extra; this module imports neither,
so that ``main`` can say so in one line on an installation without them. The apps and helpers
are in ``app``; the commands in ``calls`` (invoke), ``circuits`` (status, list, open, close,
resync, with ``formatting``), ``local`` (local up, local down) and ``demo``.
"""

from __future__ import annotations

import sys

from sfn_breaker.extras import missing_extra


def main() -> None:
    """The ``breaker`` console script."""
    try:
        from sfn_breaker.cli.app import app
    except ModuleNotFoundError as exc:
        missing = missing_extra(exc, needed_by="breaker", extra="cli")
        if missing is None:
            raise
        print(missing, file=sys.stderr)
        raise SystemExit(1) from None
    app()
