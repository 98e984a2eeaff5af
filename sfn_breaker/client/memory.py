"""The client's memory of open circuits: fail fast locally, without starting an execution.

When the breaker answers ``CircuitOpen`` for a service, the client remembers it and, until the
earlier of the circuit's retry time (``CircuitOpenError.retry_after``, from the answer's cause)
and ``cap_seconds`` from now, raises ``CircuitOpenError`` for that service at once, with
``source == "memory"``: no execution, no DynamoDB read, no cost. Powertools' circuit breaker
keeps the same kind of local cache, 5 s by default; so does this client
(``remember_open_seconds``), and 0 turns the memory off.

The cap bounds how long a client can be wrong: an operator who closes the circuit through
another client, or a probe whose success closes it, is seen by this client at most
``cap_seconds`` later. Through this client itself, reading or writing the circuit (``status``,
``close``, ``force_open``, ``force_closed``) forgets what it remembers of that service at once.

Only the breaker's own answers are remembered: an answer from memory never extends itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sfn_breaker.errors import FROM_BREAKER, FROM_MEMORY, CircuitOpenError

#: As Powertools' local cache of an open circuit.
DEFAULT_REMEMBER_OPEN_SECONDS = 5.0


@dataclass(frozen=True)
class Remembered:
    answer: CircuitOpenError
    until: float
    """Epoch seconds: the memory holds while the clock reads less than this."""


class OpenCircuitMemory:
    """Open circuits remembered per service. Safe to share between threads; never blocks for
    longer than a dictionary update, so the async client consults it on its event loop."""

    def __init__(self, cap_seconds: float, clock: Callable[[], float]) -> None:
        if cap_seconds < 0:
            raise ValueError(f"remember_open_seconds must be 0 (off) or more, not {cap_seconds}")
        self.cap_seconds = float(cap_seconds)
        self._clock = clock
        self._lock = threading.Lock()
        self._open: dict[str, Remembered] = {}
        self.executions_saved = 0
        """Calls answered from memory: executions that were not started."""

    @property
    def enabled(self) -> bool:
        return self.cap_seconds > 0

    def remember(self, answer: CircuitOpenError) -> None:
        """Keep the breaker's ``CircuitOpen`` answer until the earlier of its retry time and the cap."""
        if not self.enabled or answer.source != FROM_BREAKER:
            return
        now = self._clock()
        until = now + self.cap_seconds
        if answer.retry_after is not None:
            until = min(until, answer.retry_after.timestamp())
        if until <= now:
            return
        with self._lock:
            self._open[answer.service] = Remembered(answer, until)

    def check(self, service: str) -> None:
        """Raise the remembered answer for ``service`` (from memory) while it holds; else do nothing."""
        if not self._open:  # nothing remembered: the closed-circuit path takes no lock
            return
        now = self._clock()
        with self._lock:
            remembered = self._open.get(service)
            if remembered is None:
                return
            if now >= remembered.until:
                del self._open[service]
                return
            self.executions_saved += 1
        answer = remembered.answer
        raise CircuitOpenError(
            service,
            retry_after=answer.retry_after,
            cause=answer.cause,
            source=FROM_MEMORY,
            remembered_until=datetime.fromtimestamp(remembered.until, tz=UTC),
        )

    def forget(self, service: str | None = None) -> None:
        """Forget ``service`` (every service when ``None``): its next call asks the breaker."""
        with self._lock:
            if service is None:
                self._open.clear()
            else:
                self._open.pop(service, None)

    def remembered(self) -> dict[str, datetime]:
        """The services remembered open, and until when (whether or not that time has passed)."""
        with self._lock:
            return {name: datetime.fromtimestamp(r.until, tz=UTC) for name, r in self._open.items()}
