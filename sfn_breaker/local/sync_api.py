"""``StartSyncExecution``, as AWS answers it, in front of moto.

moto has no ``StartSyncExecution``. ``SyncExecutionMiddleware`` answers it in front of moto's
WSGI app: it starts the execution with moto's ``StartExecution``, waits for its end, and returns
AWS's response shape (``sync_response``). So the client and the CLI use one code path against
AWS and against the emulator. botocore sends this operation to the host ``sync-<endpoint>``;
against a custom endpoint a client needs ``Config(inject_host_prefix=False)`` (``BreakerClient``
does this by itself; for other tools, ``AWS_DISABLE_HOST_PREFIX_INJECTION=true``).

The middleware also serves the emulator's health document on ``HEALTH_PATH``.
"""

from __future__ import annotations

import io
import json
import math
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from sfn_breaker.contract import EXPRESS_MAX_SECONDS, MAX_INPUT_BYTES
from sfn_breaker.local.state import HEALTH_PATH

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class SyncExecutionMiddleware:
    """WSGI middleware in front of moto that answers ``StartSyncExecution`` as AWS does.

    Before anything runs, an execution's input is checked as AWS checks it (``input_refusal``:
    at most 256 KiB, and JSON), for ``StartSyncExecution`` and ``StartExecution`` alike.
    Everything else goes to moto unchanged, so errors (``StateMachineDoesNotExist``, ...) keep
    moto's (AWS's) shape. ``health`` is served on ``HEALTH_PATH`` so that a client can tell this
    emulator from whatever else holds a port.

    With a ``region``, every request is answered from that region whatever region the client
    signed it for (moto picks its backend from the signature's credential scope): the emulator
    deploys one stack in one region, and a client configured for another region still finds it.
    ``wait_for_end(arn, timeout)``, when given, returns once the execution has ended (or after
    ``timeout``); without it, the execution's status is polled every ``poll_seconds``.
    """

    TARGET = "AWSStepFunctions.StartSyncExecution"
    START_TARGET = "AWSStepFunctions.StartExecution"

    def __init__(
        self,
        app: WSGIApp,
        *,
        poll_seconds: float = 0.005,
        limit_seconds: float = EXPRESS_MAX_SECONDS,
        health: Mapping[str, Any] | None = None,
        wait_for_end: Callable[[str, float], bool] | None = None,
        region: str | None = None,
    ) -> None:
        self.app = app
        self.region = region
        self.poll_seconds = poll_seconds
        self.wait_for_end = wait_for_end
        self.limit_seconds = limit_seconds
        self.health = dict(health or {})
        self.sync_executions = 0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == HEALTH_PATH:
            return _respond(start_response, 200, {"ok": True, **self.health})
        if self.region is not None:
            _sign_for_region(environ, self.region)
        target = environ.get("HTTP_X_AMZ_TARGET")
        if target == self.TARGET:
            return self._start_sync_execution(environ, start_response)
        if target == self.START_TARGET:
            return self._start_execution(environ, start_response)
        return self.app(environ, start_response)

    def _start_execution(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """``StartExecution``: moto's, after AWS's checks of the input (which moto leaves out)."""
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            request = None
        if isinstance(request, dict) and "input" in request:
            refusal = input_refusal(request["input"])
            if refusal is not None:
                return _error(start_response, *refusal)
        return self.app(environ, start_response)

    def _start_sync_execution(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            request = json.loads(environ["wsgi.input"].read(length) or b"{}")
            if not isinstance(request, dict):
                raise ValueError("the request body must be a JSON object")
        except ValueError as exc:
            return _error(start_response, "SerializationException", f"Invalid request body: {exc}")
        machine_arn = request.get("stateMachineArn")
        if not isinstance(machine_arn, str):
            return _error(start_response, "ValidationException", "stateMachineArn is required")
        execution_input = request.get("input", "{}")
        refusal = input_refusal(execution_input)
        if refusal is not None:
            return _error(start_response, *refusal)

        status, machine = self._moto(environ, "DescribeStateMachine", {"stateMachineArn": machine_arn})
        if status != 200:
            return _respond(start_response, status, machine)
        if machine.get("type") != "EXPRESS":
            return _error(
                start_response,
                "StateMachineTypeNotSupported",
                "This operation is supported only by Express state machines.",
            )

        start = {
            "stateMachineArn": machine_arn,
            "name": request.get("name") or str(uuid.uuid4()),
            "input": execution_input,
        }
        if request.get("traceHeader"):
            start["traceHeader"] = request["traceHeader"]
        status, started = self._moto(environ, "StartExecution", start)
        if status != 200:
            return _respond(start_response, status, started)
        self.sync_executions += 1

        execution_arn = started["executionArn"]
        deadline = time.monotonic() + self.limit_seconds
        while True:
            status, described = self._moto(environ, "DescribeExecution", {"executionArn": execution_arn})
            if status != 200:
                return _respond(start_response, status, described)
            if described["status"] != "RUNNING":
                break
            if time.monotonic() > deadline:
                self._moto(environ, "StopExecution", {"executionArn": execution_arn, "error": "States.Timeout"})
                described = {**described, "status": "TIMED_OUT", "stopDate": time.time()}
                break
            if self.wait_for_end is None:
                time.sleep(self.poll_seconds)
            else:
                self.wait_for_end(execution_arn, max(0.0, min(1.0, deadline - time.monotonic())))
        return _respond(start_response, 200, sync_response(described, start["input"]))

    def _moto(self, environ: dict[str, Any], action: str, payload: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        """Call one Step Functions action on moto with the caller's headers (account, region)."""
        body = json.dumps(payload).encode()
        inner = {key: value for key, value in environ.items() if not key.startswith("werkzeug.request")}
        inner.update(
            {
                "wsgi.input": io.BytesIO(body),
                "CONTENT_LENGTH": str(len(body)),
                "HTTP_X_AMZ_TARGET": f"AWSStepFunctions.{action}",
            }
        )
        captured: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            captured["status"] = int(status.split(" ", 1)[0])

        chunks = self.app(inner, start_response)
        try:
            data = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        try:
            parsed = json.loads(data) if data else {}
        except ValueError:
            parsed = {"__type": "InternalFailure", "message": data.decode(errors="replace")}
        return captured["status"], parsed


def input_refusal(execution_input: Any) -> tuple[str, str] | None:
    """AWS's error code and message for an execution input it refuses before anything runs, else ``None``.

    The API's length constraint (``MAX_INPUT_BYTES``, counted in UTF-8 bytes) is checked first,
    as AWS validates the request before it reads the input; then the input must be JSON.
    """
    if not isinstance(execution_input, str):
        return "ValidationException", "1 validation error detected: Value at 'input' must be a string"
    size = len(execution_input.encode("utf-8"))
    if size > MAX_INPUT_BYTES:
        return (
            "ValidationException",
            "1 validation error detected: Value at 'input' failed to satisfy constraint: "
            f"Member must have length less than or equal to {MAX_INPUT_BYTES}",
        )
    try:
        json.loads(execution_input)
    except ValueError as exc:
        return "InvalidExecutionInput", f"Invalid State Machine Execution Input: '{exc}'"
    return None


def sync_response(described: Mapping[str, Any], execution_input: str) -> dict[str, Any]:
    """AWS's ``StartSyncExecution`` response for a finished execution, from ``DescribeExecution``."""
    status = described["status"]
    if status not in ("SUCCEEDED", "FAILED", "TIMED_OUT"):
        status = "FAILED"  # ABORTED: a synchronous execution has no other way to end
    start = _epoch(described.get("startDate")) or time.time()
    stop = _epoch(described.get("stopDate")) or time.time()
    response: dict[str, Any] = {
        "executionArn": described["executionArn"],
        "stateMachineArn": described["stateMachineArn"],
        "name": described.get("name"),
        "startDate": start,
        "stopDate": stop,
        "status": status,
        "input": described.get("input", execution_input),
        "inputDetails": {"included": True},
        # Express workflows are billed in 100 ms steps and 64 MB steps.
        "billingDetails": {
            "billedDurationInMilliseconds": max(100, math.ceil((stop - start) * 10) * 100),
            "billedMemoryUsedInMB": 64,
        },
    }
    if status == "SUCCEEDED":
        response["output"] = described.get("output", "null")
        response["outputDetails"] = {"included": True}
    else:
        response["error"] = described.get("error") or ("States.Timeout" if status == "TIMED_OUT" else "States.Runtime")
        if described.get("cause") is not None:
            response["cause"] = described["cause"]
    return response


def _epoch(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    return datetime.fromisoformat(str(value)).timestamp()


_CREDENTIAL_SCOPE = re.compile(r"(Credential=[^/,\s]+/\d{8}/)[^/]+/")


def _sign_for_region(environ: dict[str, Any], region: str) -> None:
    """Point a signed request's credential scope at ``region`` (moto does not check signatures)."""
    authorization = environ.get("HTTP_AUTHORIZATION")
    if authorization:
        environ["HTTP_AUTHORIZATION"] = _CREDENTIAL_SCOPE.sub(
            lambda m: f"{m.group(1)}{region}/", authorization, count=1
        )


def _respond(start_response: Callable[..., Any], status: int, body: Mapping[str, Any]) -> list[bytes]:
    data = json.dumps(body).encode()
    reason = "OK" if status == 200 else "Bad Request" if status < 500 else "Internal Server Error"
    start_response(
        f"{status} {reason}",
        [("Content-Type", "application/x-amz-json-1.0"), ("Content-Length", str(len(data)))],
    )
    return [data]


def _error(start_response: Callable[..., Any], code: str, message: str) -> list[bytes]:
    return _respond(start_response, 400, {"__type": code, "message": message})
