"""Reading a ``StartSyncExecution`` response: the service's response, or the error it stands for.

The workflow ends an execution with a named error the caller can act on: ``CircuitOpen`` (its
cause says until when, or "until further notice" for a circuit held open by an operator),
``CircuitStoreUnavailable``, ``InvalidInput`` / ``UnknownService``, or the service's own error
after its last attempt (``States.Timeout`` or the workflow's ``ServiceTimeout`` for a timeout).

Step Functions itself may end an execution with ``States.DataLimitExceeded``: some state's data
passed its 256 KiB limit. Its cause names the state, or the task's resource type (``The
state/task 'Configure payment' returned a result ...``, ``... 'lambda' ...``). Before the
service call the states carry the request and the breaker's own bookkeeping, so a request that
Step Functions accepted can still be too large for them: that is ``InvalidRequestError`` (the
service was not called). From the call on, it is the service's answer that is too large (or, on
the failure path, its error held next to a large request): ``ResponseTooLargeError`` (the service
was called). An answer over the limit that the service call's ``Catch`` sees ends the execution
with the workflow's own ``ServiceResponseTooLarge``, also ``ResponseTooLargeError``. None of them
is reported as a service failure.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sfn_breaker.contract import MAX_INPUT_BYTES, USABLE_REQUEST_BYTES
from sfn_breaker.errors import (
    BreakerError,
    CircuitOpenError,
    CircuitStoreUnavailableError,
    InvalidRequestError,
    ResponseTooLargeError,
    ServiceCallError,
)

_REQUEST_ERRORS = frozenset({"InvalidInput", "UnknownService"})
#: Task timeouts surface as States.Timeout; the workflow may name its own final timeout error.
_TIMEOUT_ERRORS = frozenset({"States.Timeout", "ServiceTimeout"})
DATA_LIMIT_EXCEEDED = "States.DataLimitExceeded"
#: The workflow's own end for an answer too large, which the service call's Catch names.
SERVICE_RESPONSE_TOO_LARGE = "ServiceResponseTooLarge"
#: The states that run before the service is called, and the resource type of the one task among
#: them (GetCircuitStatus, ``dynamodb``); ``Configure <service>`` states are matched by prefix.
_BEFORE_THE_CALL = frozenset(
    {
        "ValidateInput",
        "DefaultPayload",
        "NormalizeInput",
        "RouteService",
        "GetCircuitStatus",
        "dynamodb",
        "IsCircuitClosed",
    }
)
_STATE_IN_CAUSE = re.compile(r"The state/task '([^']*)'")
_OPEN_UNTIL = re.compile(r" until (\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z)")


def result_from(service: str, response: Mapping[str, Any]) -> Any:
    """The service's response from a ``StartSyncExecution`` response, or the error it stands for."""
    status = response.get("status")
    execution_arn = response.get("executionArn")
    if status == "SUCCEEDED":
        output = response.get("output")
        return None if output is None else json.loads(output)
    error = str(response.get("error") or ("States.Timeout" if status == "TIMED_OUT" else "States.Runtime"))
    cause = response.get("cause")
    if error == "CircuitOpen":
        text = cause or f"Circuit open for service {service}"
        raise CircuitOpenError(service, retry_after=retry_after(text), cause=text, execution_arn=execution_arn)
    if error == "CircuitStoreUnavailable":
        text = cause or f"The circuit of service {service} could not be read: the service was not called."
        raise CircuitStoreUnavailableError(service, cause=text, execution_arn=execution_arn)
    if error in _REQUEST_ERRORS:
        raise InvalidRequestError(error, cause or error, service=service)
    if error == SERVICE_RESPONSE_TOO_LARGE:
        raise ResponseTooLargeError(service, cause=cause or error, execution_arn=execution_arn)
    if error == DATA_LIMIT_EXCEEDED:
        raise data_limit_error(service, cause or "", execution_arn)
    timed_out = status == "TIMED_OUT" or error in _TIMEOUT_ERRORS
    raise ServiceCallError(service, error=error, cause=cause, timed_out=timed_out, execution_arn=execution_arn)


def data_limit_error(service: str, cause: str, execution_arn: str | None) -> BreakerError:
    """What an execution that ended in ``States.DataLimitExceeded`` means for the caller."""
    match = _STATE_IN_CAUSE.search(cause)
    state = match.group(1) if match else ""
    if state in _BEFORE_THE_CALL or state.startswith("Configure "):
        return InvalidRequestError(
            DATA_LIMIT_EXCEEDED,
            f"The request to service {service} is too large for the breaker: Step Functions accepts an "
            f"input of up to {MAX_INPUT_BYTES:,} bytes, but the breaker's states add the service's "
            f"settings to it, and at '{state}' they passed the 256 KiB state limit. The service was not "
            f"called. Keep a request under about {USABLE_REQUEST_BYTES:,} bytes in UTF-8 (docs/limits.md). "
            f"[{cause}]",
            service=service,
        )
    return ResponseTooLargeError(
        service,
        cause=(
            f"Service {service} was called, but its answer (or its error, held with the request for the "
            f"retries) was larger than Step Functions' 256 KiB state limit allows ({DATA_LIMIT_EXCEEDED} "
            f"at '{state or 'unknown'}'), so the breaker could not carry it back; the service may have "
            f"acted on the request. [{cause}]"
        ),
        execution_arn=execution_arn,
    )


def retry_after(cause: str) -> datetime | None:
    """When an open circuit's cause says it closes; ``None`` when it is held open until further notice."""
    match = _OPEN_UNTIL.search(cause)
    if match is None:
        return None
    return datetime.fromisoformat(match.group(1)).astimezone(UTC)
