"""How a circuit moves between states: pure functions of (circuit, now, policy).

    closed ──failure (threshold reached in the window)──▶ open
    open ──time up──▶ half-open ──probe claimed──▶ (probe runs)
    half-open ──probe succeeds──▶ closed (the workflow deletes the item)
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

from circuit_breaker.core import model, reading
from circuit_breaker.core.model import CircuitState, CorruptItemError


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
    version: int = 0
    exists: bool = False

    @classmethod
    def from_item(cls, item: Mapping[str, Any] | None) -> Circuit:
        if not item:
            return cls()
        try:
            expiry = reading.parse_expiry(item.get(model.EXPIRY))
        except CorruptItemError:
            expiry = None  # behaves as no expiry; the next write replaces it
        forced = item.get(model.FORCED)
        return cls(
            expiry=expiry,
            forced=forced if forced in (model.FORCED_OPEN, model.FORCED_CLOSED) else None,
            failures=tuple(int(f) for f in item.get(model.FAILURES) or ()),
            opens=int(item.get(model.OPENS, 0)),
            probes={str(k): int(v) for k, v in (item.get(model.PROBES) or {}).items()},
            version=int(item.get(model.VERSION, 0)),
            exists=True,
        )

    def state(self, now: float) -> CircuitState:
        return reading.circuit_state(self.forced, self.expiry, now)

    def active_probes(self, now: float) -> dict[str, int]:
        return {execution: lease for execution, lease in self.probes.items() if lease > now}


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
        )
        return reopened, FailureOutcome.REOPENED
    window_start = now - policy.failure_window_seconds
    recent = (*(f for f in circuit.failures if f > window_start), at)
    if len(recent) >= policy.failure_threshold:
        opened = replace(circuit, expiry=failure_expiry(now, policy.open_duration(0)), failures=(), opens=1, probes={})
        return opened, FailureOutcome.OPENED
    # Keep only as many as the threshold needs: the item stays small.
    return replace(circuit, failures=recent[-policy.failure_threshold :]), FailureOutcome.COUNTED


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


def on_success(circuit: Circuit, now: float, probe: bool) -> Circuit | None:
    """A call succeeded. Returns the circuit afterwards (the same one when nothing changes).

    The workflow closes the circuit itself (a conditional delete) when the success came after
    the open period, which is the probe's success; this function is the same rule, for the
    model and the property tests.
    """
    if probe and circuit.state(now) is CircuitState.HALF_OPEN:
        return Circuit()
    return circuit


def changes(before: Circuit, after: Circuit) -> dict[str, Any]:
    """The item attributes to write for ``after`` (``None`` values are removed)."""
    updates: dict[str, Any] = {
        model.EXPIRY: after.expiry,
        model.OPEN_UNTIL: None if after.expiry is None else reading.iso_timestamp(after.expiry),
        model.FORCED: after.forced,
        model.FAILURES: [Decimal(f) for f in after.failures] or None,
        model.OPENS: after.opens or None,
        model.PROBES: {k: Decimal(v) for k, v in after.probes.items()} or None,
        model.VERSION: before.version + 1,
    }
    return updates
