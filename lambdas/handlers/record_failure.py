"""RecordFailure: the workflow calls it once an execution has used up its attempts.

Input (built by the workflow):
    {"ServiceName": "payment", "Failure": {"Error": "...", "Cause": "..."},
     "OpenDurationSeconds": 30, "ExecutionId": "arn:..."}
Output: {"Result": "opened" | "already open" | "forced", "OpenUntil": "<ISO>" | null}
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from breaker_core import rules
from breaker_core.store import CircuitStore, RecordResult
from handlers.observability import count, logger

#: The clock the rules read; tests replace it to move time without sleeping.
clock: Callable[[], float] = time.time

_store: CircuitStore | None = None


def store() -> CircuitStore:
    """The table client, made once per container (per table name, so tests can redeploy)."""
    global _store
    if _store is None or _store.table_name != os.environ["TABLE_NAME"]:
        _store = CircuitStore(os.environ["TABLE_NAME"])
    return _store


class InvalidRecordRequest(ValueError):
    """The workflow sent RecordFailure something it does not understand (a bug, not a user error)."""


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        service = str(event["ServiceName"])
        failure = event.get("Failure") or {}
        error = str(failure.get("Error") or "Unknown")
        cause = str(failure.get("Cause") or "")
        open_duration = int(event["OpenDurationSeconds"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidRecordRequest(f"RecordFailure got {event!r}: {exc}") from exc

    now = clock()
    record = store().record_failure(service, now=now, open_duration_seconds=open_duration, error=error, cause=cause)
    open_until = None if record.open_until is None else rules.iso_timestamp(record.open_until)
    fields = {
        "circuit": service,
        "error": error,
        "cause": rules.truncate_cause(cause),
        "open_until": open_until,
        "execution": event.get("ExecutionId"),
    }
    if record.replaced_corrupt_expiry is not None:
        logger.error(
            "Corrupt circuit item: its ExpiryTimeStamp was not epoch seconds and has been replaced",
            extra={**fields, "corrupt_expiry": str(record.replaced_corrupt_expiry)},
        )
        count("CorruptItem", service)
    if record.result is RecordResult.OPENED:
        logger.warning("Circuit opened: the service failed on every attempt", extra=fields)
        count("CircuitOpened", service)
    elif record.result is RecordResult.ALREADY_OPEN:
        logger.info("Failure recorded; the circuit was already open", extra=fields)
    else:
        logger.info("Failure not recorded: the circuit is forced by an operator", extra=fields)
    count("ServiceFailed", service)
    return {"Result": record.result.value, "OpenUntil": open_until}
