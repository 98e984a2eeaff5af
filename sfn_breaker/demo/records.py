"""What reached the payment service during a run, according to the platform's own records.

Never the callers' guess. On the in-process emulator: its record of invocations of the payment
function *and* the execution histories (``TaskScheduled`` events for the function's ARN), which
must agree; on an emulator at an endpoint: the histories; on AWS, where an Express workflow keeps
no history to query: the payment function's own log (one ``START`` line per invocation).
``ServiceRecords`` reads them after the run; each record read is a ``ServiceCallCount``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sfn_breaker.demo.recording import ServiceCall, ServiceCallCount
from sfn_breaker.demo.scenario import call_tag, is_outage_payload

if TYPE_CHECKING:
    from sfn_breaker.demo.recording import DemoRun
    from sfn_breaker.demo.scenario import Scenario
    from sfn_breaker.local import LocalBreaker


class ServiceRecords:
    """Reads what reached the payment function during a run, from the platform's own records."""

    def __init__(
        self,
        *,
        stepfunctions: Any,
        state_machine_arn: str,
        function_arn: str,
        logs: Any = None,
        lambda_client: Any = None,
        local: LocalBreaker | None = None,
        log_settle_seconds: float = 60.0,
        log_poll_seconds: float = 5.0,
    ) -> None:
        self.stepfunctions = stepfunctions
        self.state_machine_arn = state_machine_arn
        self.function_arn = function_arn
        self.function_name = function_arn.rsplit(":", 1)[-1]
        self.logs = logs
        self.lambda_client = lambda_client
        self.local = local
        self.log_settle_seconds = log_settle_seconds
        self.log_poll_seconds = log_poll_seconds
        self.start_here()

    def start_here(self) -> None:
        """Count only what reaches the service from now on (the story, not what came before it)."""
        self._invocations_before = len(self.local.runtime.calls_to(self.function_name)) if self.local else 0

    def collect(self, run: DemoRun, scenario: Scenario) -> list[ServiceCallCount]:
        counts: list[ServiceCallCount] = []
        if self.local is not None:
            counts.append(self._invocations())
        history = self._histories(run)
        if history is not None:
            counts.append(history)
        if not counts and self.logs is not None:
            counts.append(self._function_log(run, scenario))
        return counts

    def _invocations(self) -> ServiceCallCount:
        assert self.local is not None
        self.local.runtime.settle()
        invocations = self.local.runtime.calls_to(self.function_name)[self._invocations_before :]
        return ServiceCallCount(
            source="emulator invocation records",
            calls=[
                ServiceCall(at=None, while_down=is_outage_payload(i.event), call=call_tag(i.event)) for i in invocations
            ],
        )

    def _histories(self, run: DemoRun) -> ServiceCallCount | None:
        """``TaskScheduled`` events for the function's ARN in the executions the run started, or
        ``None`` where executions cannot be listed (an Express workflow on AWS)."""
        try:
            executions = self._executions_since(run.started_at)
        except Exception as exc:
            if _error_code(exc) in ("StateMachineTypeNotSupported", "AccessDeniedException"):
                return None
            raise
        calls: list[ServiceCall] = []
        for arn in executions:
            for event in self._history(arn):
                details = event.get("taskScheduledEventDetails")
                if event.get("type") != "TaskScheduled" or not details:
                    continue
                parameters = json.loads(details.get("parameters") or "{}")
                if parameters.get("FunctionName") != self.function_arn:
                    continue
                payload = parameters.get("Payload")
                at = _epoch(event["timestamp"]) - run.started_at
                calls.append(ServiceCall(at=at, while_down=is_outage_payload(payload), call=call_tag(payload)))
        calls.sort(key=lambda call: call.at or 0.0)
        return ServiceCallCount(source="execution histories", calls=calls)

    def _executions_since(self, started_at: float) -> list[str]:
        arns: list[str] = []
        paginator = self.stepfunctions.get_paginator("list_executions")
        for page in paginator.paginate(stateMachineArn=self.state_machine_arn):
            for execution in page["executions"]:
                if _epoch(execution["startDate"]) >= started_at - 0.001:
                    arns.append(execution["executionArn"])
        return arns

    def _history(self, execution_arn: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        paginator = self.stepfunctions.get_paginator("get_execution_history")
        for page in paginator.paginate(executionArn=execution_arn):
            events.extend(page["events"])
        return events

    def _function_log(self, run: DemoRun, scenario: Scenario) -> ServiceCallCount:
        """One start line per invocation in the function's log group, read until log delivery has
        caught up (two reads a few seconds apart agree). The payload is not in the log, so a
        line's time tells whether the service was down: a retry that starts just after recovery
        counts as a call to the recovered service."""
        log_group = f"/aws/lambda/{self.function_name}"
        if self.lambda_client is not None:
            config = self.lambda_client.get_function_configuration(FunctionName=self.function_arn)
            log_group = config.get("LoggingConfig", {}).get("LogGroup") or log_group
        window = {"startTime": int(run.started_at * 1000), "endTime": int((run.wall(run.clock()) + 1) * 1000)}
        deadline = time.monotonic() + self.log_settle_seconds
        times: list[float] = []
        previous = -1
        while True:
            times = []
            for page in self.logs.get_paginator("filter_log_events").paginate(logGroupName=log_group, **window):
                times.extend(
                    event["timestamp"] / 1000 - run.started_at
                    for event in page["events"]
                    if _is_start_line(event.get("message", ""))
                )
            if len(times) == previous or time.monotonic() >= deadline:
                break
            previous = len(times)
            time.sleep(self.log_poll_seconds)
        return ServiceCallCount(
            source=f"function log {log_group} (by time)",
            calls=[
                ServiceCall(at=t, while_down=scenario.outage_start <= t < scenario.outage_end) for t in sorted(times)
            ],
        )


def _is_start_line(message: str) -> bool:
    """Lambda's line for the start of an invocation, in the text or the JSON log format."""
    return message.startswith("START RequestId:") or '"type":"platform.start"' in message.replace(" ", "")


def _error_code(exc: Exception) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):
        code = response.get("Error", {}).get("Code")
        return str(code) if code else None
    return None


def _epoch(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, int | float):
        return float(value)
    return datetime.fromisoformat(str(value)).timestamp()
