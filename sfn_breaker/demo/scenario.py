"""The story the demo plays: its phases (healthy -> outage -> recovered), their timing on the
demo's clock, and the payload a call sends in each phase.

The payload also carries the call's ``(caller, number)`` tag, so that every invocation the
platform records can be traced back to the call that made it (``call_tag``).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sfn_breaker.demo.errors import DemoError

HEALTHY_PAYLOAD: dict[str, Any] = {"mode": "ok", "delayMs": 100}
OUTAGE_PAYLOADS: dict[str, dict[str, Any]] = {
    "slow": {"mode": "slow", "delayMs": 5000},
    "fail": {"mode": "fail", "delayMs": 100, "message": "the payment provider is down"},
}
OutageKind = Literal["slow", "fail"]

DEFAULT_HEALTHY_SECONDS = 10.0


@dataclass(frozen=True, kw_only=True)
class ServiceSettings:
    """The deployed settings of the payment service, as its ``Configure`` state holds them."""

    timeout_seconds: int
    max_attempts: int
    retry_delays_seconds: list[int]
    open_duration_seconds: int
    function_arn: str
    failure_threshold: int = 1
    """Failed calls that open the circuit."""
    half_open_probes: int | None = None
    """Calls let through once an open period is over (``None``: every call)."""

    @property
    def worst_case_seconds(self) -> int:
        return self.max_attempts * self.timeout_seconds + sum(self.retry_delays_seconds)

    def describe(self) -> str:
        waits = ", ".join(f"{d} s" for d in self.retry_delays_seconds) or "none"
        failures = (
            "1 failed call opens" if self.failure_threshold == 1 else f"{self.failure_threshold} failed calls open"
        )
        probes = "" if self.half_open_probes is None else f", then {self.half_open_probes} probe call(s)"
        return (
            f"timeout {self.timeout_seconds} s, {self.max_attempts} attempts (waits {waits}); "
            f"{failures} it for {self.open_duration_seconds} s{probes}"
        )


class StoryPhase(enum.StrEnum):
    """A phase of the story: the payment service's health, not the circuit's state."""

    HEALTHY = "healthy"
    OUTAGE = "outage"
    RECOVERED = "recovered"


@dataclass(frozen=True, kw_only=True)
class Scenario:
    """The three phases on the demo's clock (seconds since the first call) and what callers send."""

    outage: OutageKind = "slow"
    healthy_seconds: float = DEFAULT_HEALTHY_SECONDS
    outage_seconds: float = 30.0
    recovered_seconds: float = 15.0

    def __post_init__(self) -> None:
        if self.outage not in OUTAGE_PAYLOADS:
            raise DemoError(f"outage must be one of {', '.join(OUTAGE_PAYLOADS)}, not {self.outage!r}")
        for name in ("healthy_seconds", "outage_seconds", "recovered_seconds"):
            if not getattr(self, name) > 0:
                raise DemoError(f"{name.replace('_', ' ')} must be more than 0")

    @property
    def outage_start(self) -> float:
        return self.healthy_seconds

    @property
    def outage_end(self) -> float:
        """The moment the service recovers."""
        return self.healthy_seconds + self.outage_seconds

    @property
    def total_seconds(self) -> float:
        return self.outage_end + self.recovered_seconds

    def phase_at(self, t: float) -> StoryPhase:
        if t < self.outage_start:
            return StoryPhase.HEALTHY
        if t < self.outage_end:
            return StoryPhase.OUTAGE
        return StoryPhase.RECOVERED

    def phase_start(self, phase: StoryPhase) -> float:
        """When ``phase`` begins on the demo's clock."""
        return {
            StoryPhase.HEALTHY: 0.0,
            StoryPhase.OUTAGE: self.outage_start,
            StoryPhase.RECOVERED: self.outage_end,
        }[phase]

    def payload(self, phase: StoryPhase) -> dict[str, Any]:
        return dict(OUTAGE_PAYLOADS[self.outage] if phase is StoryPhase.OUTAGE else HEALTHY_PAYLOAD)

    def describe(self, phase: StoryPhase, settings: ServiceSettings | None) -> str:
        if phase is StoryPhase.HEALTHY:
            return "payment answers in about 100 ms"
        if phase is StoryPhase.RECOVERED:
            return "payment answers in about 100 ms again"
        if self.outage == "fail":
            return "every payment call fails (PaymentFailed)"
        timeout = f"the {settings.timeout_seconds} s timeout" if settings else "the timeout"
        return f"payment hangs for 5 s, past {timeout}"


def default_phases(settings: ServiceSettings | None) -> tuple[float, float]:
    """Outage and recovered durations that let the story play out under ``settings``: at least
    two open / half-open cycles during the outage, and time after recovery for the last open
    period to end and a call to close the circuit. With the local demo settings: 30 s and 16 s."""
    if settings is None:
        return 30.0, 15.0
    cycle = settings.open_duration_seconds + settings.worst_case_seconds
    outage = max(30.0, 2.0 * cycle)
    recovered = max(15.0, float(cycle + settings.worst_case_seconds + 5))
    return outage, recovered


def is_outage_payload(payload: object) -> bool:
    """Whether a service call carried the outage's payload, i.e. reached the service while it was down."""
    return isinstance(payload, Mapping) and payload.get("mode") in ("slow", "fail")


def call_tag(payload: object) -> tuple[int, int] | None:
    """The ``(caller, number)`` a demo call writes into its payload, so that every invocation the
    platform records can be traced back to the call that made it."""
    if isinstance(payload, Mapping) and isinstance(payload.get("caller"), int) and isinstance(payload.get("call"), int):
        return payload["caller"], payload["call"]
    return None
