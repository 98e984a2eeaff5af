"""ClaimProbe: the workflow calls it only when a circuit's open period is over but no success
has closed it yet (half-open). It lets ``HalfOpenProbes`` executions through to probe the
service, each with a claim that lapses on its own, and turns every other caller away.

Input:  {"ServiceName": "payment", "Policy": {...}, "ExecutionId": "arn:..."}
Output: {"Decision": "probe" | "call" | "open" | "busy", "Cause": "..." (when failing fast)}
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from circuit_breaker.core import reading
from circuit_breaker.core.model import CircuitState
from circuit_breaker.core.transitions import Circuit, Policy, ProbeDecision, claim_probe

from .observability import count, logger
from .table import circuit_store

#: The clock the rules read; tests replace it to move time without sleeping.
clock: Callable[[], float] = time.time


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    service = str(event["ServiceName"])
    policy = Policy.from_event(event["Policy"])
    execution = str(event["ExecutionId"])
    now = clock()
    done = circuit_store().transition(service, lambda circuit: claim_probe(circuit, now, policy, execution))
    circuit = done.after or done.before
    fields = {"circuit": service, "execution": execution, "decision": done.outcome.value}
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
