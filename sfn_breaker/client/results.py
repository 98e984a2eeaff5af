"""Reading a ``StartSyncExecution`` response: the service's response, or the error it stands for.

The workflow ends an execution with a named error the caller can act on: ``CircuitOpen`` (its
cause says until when, or "until further notice" for a circuit held open by an operator),
``CircuitStoreUnavailable``, ``InvalidInput`` / ``UnknownService``, or the service's own error
after its last attempt (``States.Timeout`` or the workflow's ``ServiceTimeout`` for a timeout).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sfn_breaker.errors import (
    CircuitOpenError,
    CircuitStoreUnavailableError,
    InvalidRequestError,
    ServiceCallError,
)

_REQUEST_ERRORS = frozenset({"InvalidInput", "UnknownService"})
#: Task timeouts surface as States.Timeout; the workflow may name its own final timeout error.
_TIMEOUT_ERRORS = frozenset({"States.Timeout", "ServiceTimeout"})
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
    timed_out = status == "TIMED_OUT" or error in _TIMEOUT_ERRORS
    raise ServiceCallError(service, error=error, cause=cause, timed_out=timed_out, execution_arn=execution_arn)


def retry_after(cause: str) -> datetime | None:
    """When an open circuit's cause says it closes; ``None`` when it is held open until further notice."""
    match = _OPEN_UNTIL.search(cause)
    if match is None:
        return None
    return datetime.fromisoformat(match.group(1)).astimezone(UTC)
