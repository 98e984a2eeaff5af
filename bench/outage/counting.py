"""AWS operations, counted from the emulator's own records, never from what callers think they did.

- DynamoDB: every request moto's DynamoDB front end answers (``DynamoHandler.call_action`` is
  wrapped while ``DynamoDBRecorder`` is installed), whoever made it: a workflow's service
  integration, a Lambda handler, Powertools in a caller, a caller itself. The benchmark's own
  bookkeeping (resetting tables, watching circuits) runs inside ``uncounted()``.
- Lambda: the emulator runtime's record of invocations (``LambdaRuntime.invocations``).
- Step Functions: the executions moto lists for a state machine, and their histories.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

READS = frozenset({"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"})
WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})

_local = threading.local()


@contextmanager
def uncounted() -> Iterator[None]:
    """The benchmark's own DynamoDB calls in this block are not the strategies' operations."""
    _local.skip = True
    try:
        yield
    finally:
        _local.skip = False


@dataclass(frozen=True)
class DynamoRequest:
    action: str
    table: str
    consistent: bool


class DynamoDBRecorder:
    """Every DynamoDB request the emulator answers while installed."""

    def __init__(self) -> None:
        self.requests: list[DynamoRequest] = []
        self._lock = threading.Lock()

    @contextmanager
    def installed(self) -> Iterator[DynamoDBRecorder]:
        from moto.dynamodb.responses import DynamoHandler

        original = DynamoHandler.call_action
        recorder = self

        def call_action(handler: Any) -> Any:
            try:
                return original(handler)
            finally:
                if not getattr(_local, "skip", False):
                    body = getattr(handler, "body", None) or {}
                    request = DynamoRequest(
                        handler._get_action(), str(body.get("TableName", "")), bool(body.get("ConsistentRead"))
                    )
                    with recorder._lock:
                        recorder.requests.append(request)

        DynamoHandler.call_action = call_action  # type: ignore[method-assign]
        try:
            yield self
        finally:
            DynamoHandler.call_action = original  # type: ignore[method-assign]

    def mark(self) -> int:
        with self._lock:
            return len(self.requests)

    def since(self, mark: int) -> list[DynamoRequest]:
        with self._lock:
            return list(self.requests[mark:])


@dataclass
class Operations:
    """The AWS operations of one call (or of a run), by kind."""

    executions: int = 0
    state_transitions: int = 0
    """States entered, as the execution histories show them."""
    billable_transitions: int = 0
    """States entered plus task retries: what a Standard workflow is billed for."""
    lambda_invocations: Counter[str] = field(default_factory=Counter)
    """By function: the service, and the breaker's own functions."""
    dynamodb: Counter[str] = field(default_factory=Counter)
    """By action (``GetItem``, ``Query``, ``PutItem``, ...)."""
    read_units: float = 0.0
    write_units: float = 0.0
    lambda_memory_mb: dict[str, int] = field(default_factory=dict)

    def breaker_lambda_invocations(self, service_function: str) -> int:
        return sum(n for name, n in self.lambda_invocations.items() if name != service_function)

    @property
    def dynamodb_reads(self) -> int:
        return sum(n for action, n in self.dynamodb.items() if action in READS)

    @property
    def dynamodb_writes(self) -> int:
        return sum(n for action, n in self.dynamodb.items() if action in WRITES)

    def add_dynamodb(self, requests: list[DynamoRequest]) -> None:
        for request in requests:
            self.dynamodb[request.action] += 1
            if request.action in READS:
                # Items here are far below 4 KB: one unit strongly consistent, half eventually.
                self.read_units += 1.0 if request.consistent else 0.5
            elif request.action in WRITES:
                self.write_units += 1.0  # items below 1 KB

    def add_history(self, events: list[dict[str, Any]]) -> None:
        self.executions += 1
        entered = sum(1 for e in events if e["type"].endswith("StateEntered"))
        task_entries = sum(1 for e in events if e["type"] == "TaskStateEntered")
        scheduled = sum(1 for e in events if e["type"] in ("TaskScheduled", "LambdaFunctionScheduled"))
        self.state_transitions += entered
        self.billable_transitions += entered + max(0, scheduled - task_entries)


def executions_of(sfn: Any, machine_arn: str) -> set[str]:
    """Every execution moto holds for ``machine_arn``."""
    arns: set[str] = set()
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=machine_arn):
        arns.update(e["executionArn"] for e in page["executions"])
    return arns


def history(sfn: Any, arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=arn):
        events.extend(page["events"])
    return events
