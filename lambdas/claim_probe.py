"""ClaimProbe: the workflow calls it only when a circuit's open period is over but no success
has closed it yet (half-open). It lets ``HalfOpenProbes`` executions through to probe the
service, each with a claim that lapses on its own, and turns every other caller away.

With ``"Action": "succeeded"`` the workflow reports a probe's success instead (only when one
success is not enough to close, or a slow start follows): ``SuccessThreshold`` successes in a
row close the circuit.

Input:  {"ServiceName": "payment", "Policy": {...}, "ExecutionId": "arn:...", "Action": "claim" | "succeeded"}
Output: {"Decision": "probe" | "call" | "open" | "busy", "Cause": "..." (when failing fast)}
        or, for "succeeded", {"Outcome": "closed" | "slow start" | "counted" | "not half-open"}
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from sfn_breaker.core import reading
from sfn_breaker.core.model import CircuitState
from sfn_breaker.core.transitions import (
    Circuit,
    Policy,
    ProbeDecision,
    SuccessOutcome,
    claim_probe,
    on_probe_success,
)

from .observability import count, log_corrupt_bookkeeping, logger
from .table import circuit_store

#: The clock the rules read; tests replace it to move time without sleeping.
clock: Callable[[], float] = time.time


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    service = str(event["ServiceName"])
    policy = Policy.from_event(event["Policy"])
    execution = str(event["ExecutionId"])
    now = clock()
    if event.get("Action") == "succeeded":
        return probe_succeeded(service, policy, execution, now)
    done = circuit_store().transition(service, lambda circuit: claim_probe(circuit, now, policy, execution))
    circuit = done.after or done.before
    fields = {"circuit": service, "execution": execution, "decision": done.outcome.value}
    if done.after is not None:
        log_corrupt_bookkeeping(service, done.before, execution=execution)
    if done.outcome is ProbeDecision.PROBE:
        if done.after is not None:
            lease = circuit.probes[execution]
            logger.info("Half-open: this execution probes the service", extra={**fields, "claim_until": lease})
            count("ProbeStarted", service)
        return {"Decision": done.outcome.value}
    if done.outcome is ProbeDecision.CALL:
        return {"Decision": done.outcome.value}
    cause = fast_fail_cause(service, circuit, now)
    logger.info("Fast fail", extra={**fields, "cause": cause})
    count("FastFail", service)
    return {"Decision": done.outcome.value, "Cause": cause}


def probe_succeeded(service: str, policy: Policy, execution: str, now: float) -> dict[str, Any]:
    done = circuit_store().transition(service, lambda circuit: on_probe_success(circuit, now, policy, execution))
    fields = {"circuit": service, "execution": execution, "outcome": done.outcome.value}
    if done.after is not None:
        log_corrupt_bookkeeping(service, done.before, execution=execution)
    if done.outcome is SuccessOutcome.COUNTED:
        logger.info(
            "Half-open: the probe succeeded; more successes are needed to close the circuit",
            extra={**fields, "successes": done.after.successes, "threshold": policy.success_threshold},  # type: ignore[union-attr]
        )
    elif done.outcome is SuccessOutcome.SLOW_START:
        ends = reading.iso_timestamp(done.after.slow_start[-1])  # type: ignore[union-attr]
        logger.info("Circuit closed: a slow start lets traffic back in", extra={**fields, "slow_start_until": ends})
    elif done.outcome is SuccessOutcome.CLOSED:
        logger.info("Circuit closed: the probes succeeded", extra=fields)
    # CircuitClosed is counted by the stream handler, for every way a circuit closes.
    return {"Outcome": done.outcome.value}


def fast_fail_cause(service: str, circuit: Circuit, now: float) -> str:
    """The same words the workflow uses for a fast fail, for the cases only this function sees."""
    state = circuit.state(now)
    if state is CircuitState.FORCED_OPEN and circuit.expiry is None:
        return (
            f"Circuit held open for service {service} by an operator until further notice: the service was not called."
        )
    if state in (CircuitState.OPEN, CircuitState.FORCED_OPEN) and circuit.expiry is not None:
        return (
            f"Circuit open for service {service} until {reading.iso_timestamp(circuit.expiry)}: "
            "the service was not called. Retry after that time."
        )
    lapses = max(circuit.active_probes(now).values(), default=int(now))
    return (
        f"Circuit half-open for service {service} until {reading.iso_timestamp(lapses)}: a probe call is "
        "in flight, so the service was not called. Retry after that time."
    )
