"""RecordFailure: the workflow calls it when an execution has used up its attempts, when the
CircuitStatus table could not be read, and (asynchronously, to log and count it) when a
service's fallback answered in its place.

Input (built by the workflow):
    {"ServiceName": "payment", "Failure": {"Error": "...", "Cause": "..."},
     "Policy": {"OpenDurationSeconds": 30, "FailureThreshold": 1, ...},
     "ExecutionId": "arn:...", "Kind": "service" | "attempts" | "store" | "fallback"}
Output: {"Result": "opened" | "reopened" | "counted" | "already open" | "forced" | "logged",
         "OpenUntil": "<ISO>" | null}
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from sfn_breaker.core import model, reading
from sfn_breaker.core.store import StoreError, Transition
from sfn_breaker.core.transitions import Circuit, FailureOutcome, Policy, on_failed_attempts, on_failure

from .observability import count, log_corrupt_bookkeeping, logger
from .table import circuit_store

#: The clock the rules read; tests replace it to move time without sleeping.
clock: Callable[[], float] = time.time


class InvalidRecordRequest(ValueError):
    """The workflow sent RecordFailure something it does not understand (a bug, not a user error)."""


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        service = str(event["ServiceName"])
        failure = event.get("Failure") or {}
        error = str(failure.get("Error") or "Unknown")
        cause = str(failure.get("Cause") or "")
        kind = event.get("Kind", "service")
        policy = Policy.from_event(event["Policy"]) if kind in ("service", "attempts") else None
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidRecordRequest(f"RecordFailure got {event!r}: {exc}") from exc
    fields: dict[str, Any] = {
        "circuit": service,
        "error": error,
        "cause": reading.truncate_cause(cause),
        "execution": event.get("ExecutionId"),
    }
    if kind == "fallback":
        logger.info(
            "Answered by the service's fallback: the service was not called"
            if event.get("After") != "failure"
            else "Answered by the service's fallback after every attempt failed",
            extra={**fields, "after": event.get("After")},
        )
        count("Fallback", service)
        return {"Result": "logged", "OpenUntil": None}
    if policy is None:
        logger.error("Circuit status could not be read; the service's store-fault policy applies", extra=fields)
        count("StoreFault", service)
        return {"Result": "logged", "OpenUntil": None}

    now = clock()
    at = reading.iso_timestamp(int(now))

    def annotate(after: Circuit, outcome: FailureOutcome) -> dict[str, Any]:
        notes = {model.LAST_ERROR: error, model.LAST_CAUSE: reading.truncate_cause(cause), model.LAST_FAILURE_AT: at}
        if outcome in (FailureOutcome.OPENED, FailureOutcome.REOPENED):
            notes[model.OPENED_AT] = at
        return notes

    def decide(circuit: Circuit) -> tuple[Circuit | None, FailureOutcome]:
        if kind == "attempts":
            return on_failed_attempts(circuit, now, policy)
        return on_failure(circuit, now, policy)

    try:
        done = circuit_store().transition(service, decide, annotate=annotate)
    except StoreError:
        logger.exception("Could not record the failure: the circuit did not change", extra=fields)
        count("RecordFailureFailed", service)
        raise
    expiry = done.after.expiry if done.after is not None else done.before.expiry
    open_until = None if expiry is None else reading.iso_timestamp(expiry)
    fields.update(open_until=open_until, outcome=done.outcome.value)
    if done.after is not None:
        log_corrupt_bookkeeping(service, done.before, **fields)
    raw_expiry = (done.raw or {}).get(model.EXPIRY)
    if done.after is not None and raw_expiry is not None and reading.mirror_for(done.raw or {}) is None:
        logger.error(
            "Corrupt circuit item: its ExpiryTimeStamp was not epoch seconds and has been replaced",
            extra={**fields, "corrupt_expiry": str(raw_expiry)},
        )
        count("CorruptItem", service)
    if kind == "attempts":
        return attempts_recorded(service, done, policy, fields, open_until)
    if done.outcome is FailureOutcome.OPENED:
        logger.warning("Circuit opened: the service failed on every attempt", extra=fields)
        count("CircuitOpened", service)
    elif done.outcome is FailureOutcome.REOPENED:
        logger.warning("Circuit opened again: the probe failed", extra={**fields, "opens": done.after.opens})  # type: ignore[union-attr]
        count("CircuitOpened", service)
    elif done.outcome is FailureOutcome.COUNTED:
        failures = len(done.after.failures)  # type: ignore[union-attr]
        logger.info(
            "Failure counted; the circuit stays closed",
            extra={**fields, "failures": failures, "threshold": policy.failure_threshold},
        )
    else:
        logger.info(f"Failure not recorded: the circuit is {done.outcome.value}", extra=fields)
    count("ServiceFailed", service)
    return {"Result": done.outcome.value, "OpenUntil": open_until}


def attempts_recorded(
    service: str, done: Transition[FailureOutcome], policy: Policy, fields: dict[str, Any], open_until: str | None
) -> dict[str, Any]:
    """The fleet's failed attempts reached the threshold: opened, or a stale count cleared."""
    attempts = done.before.failed_attempts
    if done.outcome is FailureOutcome.OPENED:
        logger.warning(
            "Circuit opened: failed attempts across all callers reached the threshold before their retries",
            extra={**fields, "failed_attempts": attempts, "threshold": policy.failed_attempts_threshold},
        )
        count("CircuitOpened", service)
    elif done.after is not None:
        logger.info("Failed attempts counted again: the earlier count was older than the window", extra=fields)
    return {"Result": done.outcome.value, "OpenUntil": open_until}
