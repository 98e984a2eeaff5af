"""What the strategies share: callers' outcomes, the emulator's handles, the ``Strategy`` base.

A strategy makes callers (``new_caller``: one caller is one client process or one Lambda
execution environment), tells whether its circuit is closed (``circuit_closed``, read without
counting), clears its state between runs (``reset``) and opens its circuit its own way for the
operation counts (``open_circuit``).
"""

from __future__ import annotations

import enum
import json
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from bench.outage.counting import DynamoDBRecorder, uncounted
from bench.outage.service import Switchboard
from bench.outage.settings import Settings


class Outcome(enum.StrEnum):
    OK = "ok"
    FAILED = "failed"
    FAST_FAIL = "fast fail"


Caller = Callable[[], Outcome]


@dataclass
class Emulator:
    """What every strategy shares: the running emulator and the benchmark's handles on it."""

    local: Any  # LocalBreaker
    session: Any  # boto3 session; its clients without an endpoint reach moto in this process
    runtime: Any  # LambdaRuntime
    service_function: str
    switchboard: Switchboard
    recorder: DynamoDBRecorder
    settings: Settings


class ServiceFailed(RuntimeError):
    """A direct call to the service failed or timed out."""


def invoke_service(client: Any, executor: ThreadPoolExecutor, function: str, timeout: float) -> Any:
    """One synchronous ``Invoke`` of the service, given up on after ``timeout`` seconds."""
    future = executor.submit(client.invoke, FunctionName=function, Payload=b"{}")
    try:
        response = future.result(timeout=timeout)
    except FutureTimeout as exc:
        raise ServiceFailed(f"no answer within {timeout} s") from exc
    payload = json.loads(response["Payload"].read() or b"null")
    if response.get("FunctionError"):
        raise ServiceFailed(str(payload))
    return payload


def delete_all(client: Any, table: str, keys: tuple[str, ...]) -> None:
    with uncounted():
        for item in client.scan(TableName=table, ConsistentRead=True).get("Items", []):
            client.delete_item(TableName=table, Key={k: item[k] for k in keys})


class Strategy(ABC):
    name: str
    machine_arn: str | None = None
    """The workflow whose executions the strategy starts, if any."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.settings = emulator.settings
        self._executors: list[ThreadPoolExecutor] = []
        self.direct_attempts: int | None = None
        """Calls the callers made to the service themselves, by their own count (no breaker only)."""
        self._lock = threading.Lock()

    @abstractmethod
    def new_caller(self) -> Caller: ...

    def circuit_closed(self) -> bool | None:
        """``None``: there is no circuit."""
        return None

    def reset(self) -> None:  # noqa: B027 - nothing to forget without a circuit
        """Every circuit closed and forgotten."""

    def open_circuit(self) -> None:  # noqa: B027 - no circuit to open without a breaker
        """Open the circuit the way the design does (for counting one open-circuit call)."""

    def close(self) -> None:
        """Wait for invocations still in flight (a call given up on may still reach the service)."""
        for executor in self._executors:
            executor.shutdown(wait=True, cancel_futures=True)
        self._executors.clear()

    def _executor(self) -> ThreadPoolExecutor:
        executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix=f"{self.name}-invoke")
        self._executors.append(executor)
        return executor
