"""How a circuit moves between states: pure functions of (circuit, now, policy).

    closed ──failure (threshold reached in the window)──▶ open
    open ──time up──▶ half-open ──probe claimed──▶ (probe runs)
    half-open ──``success_threshold`` probes succeed in a row──▶ closed (the item is deleted, or
        kept with a slow start's admission times when ``slow_start_seconds`` > 0)
    half-open ──probe fails──▶ open again, for longer when ``open_duration_growth`` > 1
    forced open / forced closed: only an operator enters or leaves them

RecordFailure and ClaimProbe read the item, call these functions, and write the result with a
condition on what they read (see ``store.CircuitStore.transition``), so concurrent executions
never act on a stale circuit.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from sfn_breaker.core import model, reading
from sfn_breaker.core.model import CircuitState, CorruptItemError


def failure_expiry(now: float, open_duration_seconds: int) -> int:
    """When a circuit opened (or re-opened) by a failure recorded at ``now`` closes again."""
    return math.ceil(now) + open_duration_seconds


@dataclass(frozen=True, kw_only=True)
class Policy:
    """A service's breaker settings that the transitions use (all durations in seconds).

    These defaults are the breaker's defaults: the construct's ``BreakerSettings`` takes its own
    from here, and writes every field into the workflow (``$.Service.Policy``).
    """

    open_duration_seconds: int = 30
    failure_threshold: int = 1
    failure_window_seconds: int = 60
    half_open_probes: int = 1
    probe_lease_seconds: int = 30
    open_duration_growth: float = 1.0
    max_open_duration_seconds: int = 600
    success_threshold: int = 1
    slow_start_seconds: int = 0
    failed_attempts_threshold: int = 10

    @classmethod
    def from_event(cls, raw: Mapping[str, Any]) -> Policy:
        """From the workflow's ``$.Service.Policy`` (CamelCase keys)."""
        return cls(
            open_duration_seconds=int(raw["OpenDurationSeconds"]),
            failure_threshold=int(raw["FailureThreshold"]),
            failure_window_seconds=int(raw["FailureWindowSeconds"]),
            half_open_probes=int(raw["HalfOpenProbes"]),
            probe_lease_seconds=int(raw["ProbeLeaseSeconds"]),
            open_duration_growth=float(raw["OpenDurationGrowth"]),
            max_open_duration_seconds=int(raw["MaxOpenDurationSeconds"]),
            success_threshold=int(raw["SuccessThreshold"]),
            slow_start_seconds=int(raw["SlowStartSeconds"]),
            failed_attempts_threshold=int(raw["FailedAttemptsThreshold"]),
        )

    def open_duration(self, opens_before: int) -> int:
        """The open period after ``opens_before`` consecutive opens (0 for the first one)."""
        grown = self.open_duration_seconds * self.open_duration_growth**opens_before
        return int(min(math.ceil(grown), max(self.max_open_duration_seconds, self.open_duration_seconds)))


@dataclass(frozen=True, kw_only=True)
class Circuit:
    """The parts of an item the transitions read and write."""

    expiry: int | None = None
    forced: str | None = None
    failures: tuple[int, ...] = ()
    """When recent executions failed (epoch s), while the circuit is closed."""
    opens: int = 0
    """Consecutive opens since the circuit was last closed by a success."""
    probes: Mapping[str, int] = field(default_factory=dict)
    """Probe executions in half-open, with when each one's claim lapses."""
    successes: int = 0
    """Consecutive successful probes in this half-open period."""
    slow_start: tuple[int, ...] = ()
    """After a close with a slow start: when each step of ``model.SLOW_START_SHARES`` ends (epoch s)."""
    failed_attempts: int = 0
    """Failed attempts across all executions, counted by the workflow before each retry."""
    failed_attempts_since: int | None = None
    """When the first of ``failed_attempts`` failed (epoch s)."""
    version: int = 0
    exists: bool = False
    corrupt: tuple[tuple[str, str], ...] = field(default=(), compare=False)
    """Bookkeeping attributes that were not what the breaker writes: (name, old value), replaced
    by the next write and logged by whoever makes it."""

    @classmethod
    def from_item(cls, item: Mapping[str, Any] | None) -> Circuit:
        """The circuit an item describes. Corrupt bookkeeping (say ``Failures`` written as a String
        by another tool) reads as empty and is listed in ``corrupt``: it never blocks a write."""
        if not item:
            return cls()
        corrupt: list[tuple[str, str]] = []

        def parsed(name: str, parse: Any, empty: Any) -> Any:
            raw = item.get(name)
            if raw is None:
                return empty
            try:
                return parse(raw)
            except (CorruptItemError, TypeError, ValueError, ArithmeticError):
                corrupt.append((name, repr(raw)))
                return empty

        try:
            expiry = reading.parse_expiry(item.get(model.EXPIRY))
        except CorruptItemError:
            expiry = None  # behaves as no expiry; the writer logs it as it replaces it
        forced = item.get(model.FORCED)
        slow_start = tuple(
            parsed(name, lambda raw, name=name: reading.parse_iso_timestamp(raw, name), None)
            for name in (model.ADMIT_10, model.ADMIT_50)
        )
        return cls(
            expiry=expiry,
            forced=forced if forced in (model.FORCED_OPEN, model.FORCED_CLOSED) else None,
            failures=parsed(model.FAILURES, _times, ()),
            opens=parsed(model.OPENS, _count, 0),
            probes=parsed(model.PROBES, _leases, {}),
            successes=parsed(model.PROBE_SUCCESSES, _count, 0),
            failed_attempts=parsed(model.FAILED_ATTEMPTS, _count, 0),
            failed_attempts_since=parsed(
                model.FAILED_ATTEMPTS_SINCE,
                lambda raw: reading.parse_iso_timestamp(raw, model.FAILED_ATTEMPTS_SINCE),
                None,
            ),
            slow_start=slow_start if None not in slow_start else (),
            version=parsed(model.VERSION, _count, 0),
            exists=True,
            corrupt=tuple(corrupt),
        )

    def state(self, now: float) -> CircuitState:
        return reading.circuit_state(self.forced, self.expiry, now)

    def active_probes(self, now: float) -> dict[str, int]:
        return {execution: lease for execution, lease in self.probes.items() if lease > now}

    def admitted_percent(self, now: float) -> int:
        """The share of calls a slow start lets through at ``now`` (100: no slow start under way)."""
        if self.state(now) is not CircuitState.CLOSED:
            return 100
        for ends, share in zip(self.slow_start, model.SLOW_START_SHARES, strict=False):
            if ends > now:
                return share
        return 100


def _count(raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int | Decimal) or raw < 0 or raw != int(raw):
        raise ValueError(f"not a count: {raw!r}")
    return int(raw)


def _times(raw: Any) -> tuple[int, ...]:
    if isinstance(raw, str | bytes | Mapping):
        raise ValueError(f"not a list of times: {raw!r}")
    return tuple(_count(value) for value in raw)


def _leases(raw: Any) -> dict[str, int]:
    if not isinstance(raw, Mapping):
        raise ValueError(f"not a map of claims: {raw!r}")
    return {str(key): _count(value) for key, value in raw.items()}


class FailureOutcome(enum.StrEnum):
    OPENED = "opened"
    REOPENED = "reopened"
    COUNTED = "counted"
    ALREADY_OPEN = "already open"
    FORCED = "forced"


class ProbeDecision(enum.StrEnum):
    CALL = "call"
    """Closed (or forced closed): call the service as usual."""
    PROBE = "probe"
    """Half-open and this execution holds a probe claim: call the service."""
    OPEN = "open"
    """Open: fail fast."""
    BUSY = "busy"
    """Half-open and the probes are taken: fail fast."""


class SuccessOutcome(enum.StrEnum):
    CLOSED = "closed"
    """Enough probes succeeded in a row: the circuit is closed (the item deleted)."""
    SLOW_START = "slow start"
    """Closed, and a slow start admits a growing share of calls."""
    COUNTED = "counted"
    """A probe succeeded; more are needed before the circuit closes. Its claim is released."""
    NOT_HALF_OPEN = "not half-open"
    """The circuit changed since the call began (an operator, another probe): nothing to do."""


def on_failure(circuit: Circuit, now: float, policy: Policy) -> tuple[Circuit | None, FailureOutcome]:
    """A failed execution (every attempt failed). Returns the new circuit (``None``: no write)."""
    state = circuit.state(now)
    if state in (CircuitState.FORCED_OPEN, CircuitState.FORCED_CLOSED):
        return None, FailureOutcome.FORCED
    if state is CircuitState.OPEN:
        # The first recorded failure defined the expiry; later ones never push it out.
        return None, FailureOutcome.ALREADY_OPEN
    at = math.ceil(now)
    if state is CircuitState.HALF_OPEN:
        duration = policy.open_duration(circuit.opens)
        reopened = replace(
            circuit,
            expiry=failure_expiry(now, duration),
            forced=None,
            failures=(),
            opens=circuit.opens + 1,
            probes={},
            successes=0,
            failed_attempts=0,
            failed_attempts_since=None,
        )
        return reopened, FailureOutcome.REOPENED
    window_start = now - policy.failure_window_seconds
    recent = (*(f for f in circuit.failures if f > window_start), at)
    if len(recent) >= policy.failure_threshold:
        opened = _opened(circuit, now, policy)
        return opened, FailureOutcome.OPENED
    # Keep only as many as the threshold needs: the item stays small.
    return replace(circuit, failures=recent[-policy.failure_threshold :]), FailureOutcome.COUNTED


def _opened(circuit: Circuit, now: float, policy: Policy) -> Circuit:
    """A closed circuit opened for its first open period, with every count cleared."""
    return replace(
        circuit,
        expiry=failure_expiry(now, policy.open_duration(0)),
        failures=(),
        opens=1,
        probes={},
        successes=0,
        slow_start=(),
        failed_attempts=0,
        failed_attempts_since=None,
    )


def on_failed_attempts(circuit: Circuit, now: float, policy: Policy) -> tuple[Circuit | None, FailureOutcome]:
    """The workflow counted a failed attempt (before a retry) and found ``failed_attempts_threshold``
    or more: open the circuit when they all failed within ``failure_window_seconds``, so that the
    fleet's retries find it open instead of piling onto a service that has just died.

    A count whose first failure is older than the window is stale: it is cleared, and counting
    starts again. Open, half-open and forced circuits are left alone (a probe's own failure is
    ``on_failure``'s).
    """
    state = circuit.state(now)
    if state in (CircuitState.FORCED_OPEN, CircuitState.FORCED_CLOSED):
        return None, FailureOutcome.FORCED
    if state is not CircuitState.CLOSED:
        return None, FailureOutcome.ALREADY_OPEN
    threshold = policy.failed_attempts_threshold
    if threshold <= 0 or circuit.failed_attempts < threshold:
        return None, FailureOutcome.COUNTED
    since = circuit.failed_attempts_since
    if since is None or since <= now - policy.failure_window_seconds:
        return replace(circuit, failed_attempts=0, failed_attempts_since=None), FailureOutcome.COUNTED
    return _opened(circuit, now, policy), FailureOutcome.OPENED


def claim_probe(circuit: Circuit, now: float, policy: Policy, execution: str) -> tuple[Circuit | None, ProbeDecision]:
    """An execution found the circuit's time up: may it probe the service?"""
    state = circuit.state(now)
    if state in (CircuitState.CLOSED, CircuitState.FORCED_CLOSED):
        return None, ProbeDecision.CALL
    if state in (CircuitState.OPEN, CircuitState.FORCED_OPEN):
        return None, ProbeDecision.OPEN
    active = circuit.active_probes(now)
    if execution in active:
        return None, ProbeDecision.PROBE
    if len(active) >= policy.half_open_probes:
        return None, ProbeDecision.BUSY
    # A claim lapses on its own, so a probe whose execution dies cannot hold the circuit.
    claimed = replace(circuit, probes={**active, execution: math.ceil(now) + policy.probe_lease_seconds})
    return claimed, ProbeDecision.PROBE


def on_probe_success(
    circuit: Circuit, now: float, policy: Policy, execution: str
) -> tuple[Circuit | None, SuccessOutcome]:
    """A call let through in half-open answered (succeeded, or raised an ignored error: the
    service is answering). ``success_threshold`` such answers in a row close the circuit.

    The workflow closes the circuit itself (a conditional delete) when one success is enough
    and there is no slow start; it calls this rule (through ClaimProbe) otherwise.
    """
    if circuit.state(now) is not CircuitState.HALF_OPEN:
        return None, SuccessOutcome.NOT_HALF_OPEN
    successes = circuit.successes + 1
    if successes < policy.success_threshold:
        probes = {other: lease for other, lease in circuit.active_probes(now).items() if other != execution}
        return replace(circuit, successes=successes, probes=probes), SuccessOutcome.COUNTED
    if policy.slow_start_seconds <= 0:
        return Circuit(), SuccessOutcome.CLOSED
    start = math.ceil(now)
    steps = (start + math.ceil(policy.slow_start_seconds / 2), start + policy.slow_start_seconds)
    return Circuit(slow_start=steps, version=circuit.version, exists=True), SuccessOutcome.SLOW_START


def changes(before: Circuit, after: Circuit) -> dict[str, Any]:
    """The item attributes to write for ``after`` (``None`` values are removed)."""
    updates: dict[str, Any] = {
        model.EXPIRY: after.expiry,
        model.OPEN_UNTIL: None if after.expiry is None else reading.iso_timestamp(after.expiry),
        model.FORCED: after.forced,
        model.FAILURES: [Decimal(f) for f in after.failures] or None,
        model.OPENS: after.opens or None,
        model.PROBES: {k: Decimal(v) for k, v in after.probes.items()} or None,
        model.PROBE_SUCCESSES: after.successes or None,
        model.FAILED_ATTEMPTS: after.failed_attempts or None,
        model.FAILED_ATTEMPTS_SINCE: (
            None if after.failed_attempts_since is None else reading.iso_timestamp(after.failed_attempts_since)
        ),
        model.ADMIT_10: reading.iso_timestamp(after.slow_start[0]) if after.slow_start else None,
        model.ADMIT_50: reading.iso_timestamp(after.slow_start[1]) if after.slow_start else None,
        model.VERSION: before.version + 1,
    }
    return updates
