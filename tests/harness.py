"""Test helpers: run the synthesized workflow on moto and look at what it did."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

from sfn_breaker.local.assembly import Assembly, merge_context
from sfn_breaker.local.deploy import DeployedStack, deploy_stack
from sfn_breaker.local.interpreter import state_data_bytes
from sfn_breaker.local.runtime import LambdaRuntime

MOTO_CONFIG: Any = {
    "lambda": {"use_docker": False},
    "stepfunctions": {"execute_state_machine": True},
}
DEMO_SERVICE = "payment"
REPOSITORY = Path(__file__).resolve().parent.parent


def repository_context(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The context `cdk synth` gives `app.py` in this repository: `cdk.json`'s, with `overrides`
    merged in (the `circuit-breaker` object key by key)."""
    context: dict[str, Any] = json.loads((REPOSITORY / "cdk.json").read_text())["context"]
    return merge_context(context, overrides)


class ServiceError(RuntimeError):
    """What the scripted service raises when told to fail."""


class ScriptedService:
    """A downstream service that follows a script: one step per call, then ``then`` forever.

    Steps: ``"ok"`` answers ``{"ok": True, "call": n, "echo": payload}``; a dict is the answer
    itself; ``"fail"`` raises
    ``ServiceError``; ``"hang"`` blocks past any timeout (until the test ends); ``"hold"`` waits
    until the test calls ``proceed()``, then answers; a callable runs (something else happens
    while the service is being called) and then the call fails.
    """

    def __init__(self, *steps: Any, then: str = "ok", gate: int = 0, gated_calls: int | None = None) -> None:
        """``gate=N``: calls wait for each other in groups of N before answering, so that N
        concurrent executions are all inside the service at the same moment; only the first
        ``gated_calls`` calls (default N) are gated."""
        self.steps = list(steps)
        self.then = then
        self.calls: list[Any] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._gate = threading.Barrier(gate) if gate else None
        self._gated_calls = gate if gated_calls is None else gated_calls
        self._proceed = threading.Event()

    def __call__(self, event: Any, context: Any) -> Any:
        with self._lock:
            self.calls.append(event)
            n = len(self.calls)
            step = self.steps.pop(0) if self.steps else self.then
        if self._gate is not None and n <= self._gated_calls:
            self._gate.wait(timeout=30)
        if step == "hang":
            self._release.wait(timeout=30)
            return {"late": True}
        if step == "hold":
            self._proceed.wait(timeout=30)
            return {"ok": True, "call": n, "echo": event}
        if isinstance(step, dict):
            return step
        if callable(step):
            step()
            raise ServiceError(f"scripted failure on call {n}")
        if step == "fail":
            raise ServiceError(f"scripted failure on call {n}")
        return {"ok": True, "call": n, "echo": event}

    def proceed(self) -> None:
        self._proceed.set()

    def behave(self, *steps: Any, then: str) -> None:
        with self._lock:
            self.steps, self.then = list(steps), then

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.calls)

    def release(self) -> None:
        self._release.set()
        self._proceed.set()


@dataclass
class Execution:
    arn: str
    status: str
    error: str | None
    cause: str | None
    output: Any
    history: list[dict[str, Any]] = field(repr=False)

    def states(self) -> list[str]:
        """Names of the states entered, in order."""
        return [e["stateEnteredEventDetails"]["name"] for e in self.history if "stateEnteredEventDetails" in e]

    def largest_state_data(self) -> int:
        """The largest input or output any state of this execution held, as compact JSON in UTF-8
        bytes: Step Functions fails an execution whose state data reaches 256 KiB,
        ``contract.MAX_INPUT_BYTES``, with ``States.DataLimitExceeded``, and so does moto
        (``moto/stepfunctions/parser/quotas.py``), measured as AWS measures it by the emulator's
        interpreter (``sfn_breaker.local.interpreter.state_data_bytes``). The history writes
        non-ASCII characters as ``\\u`` escapes: they are counted as the UTF-8 they stand for."""
        sizes = [0]
        for event in self.history:
            for details in ("stateEnteredEventDetails", "stateExitedEventDetails"):
                data = event.get(details, {}).get("input" if details.startswith("stateEntered") else "output")
                if data is not None:
                    sizes.append(state_data_bytes(json.loads(data)))
        return max(sizes)

    def tasks(self, resource_suffix: str = "") -> list[dict[str, Any]]:
        """TaskScheduled events, optionally only those whose resource ends with ``resource_suffix``."""
        return [
            e["taskScheduledEventDetails"]
            for e in self.history
            if e["type"] == "TaskScheduled"
            and f"{e['taskScheduledEventDetails']['resourceType']}:{e['taskScheduledEventDetails']['resource']}".endswith(
                resource_suffix
            )
        ]


class Breaker:
    """The deployed breaker on moto, with the handles a test needs."""

    def __init__(self, session: Any, stack: DeployedStack, runtime: LambdaRuntime, service: ScriptedService) -> None:
        self.session = session
        self.stack = stack
        self.runtime = runtime
        self.service = service
        self.sfn = session.client("stepfunctions")
        self.table_name = stack.outputs["TableName"]
        self.table = session.resource("dynamodb").Table(self.table_name)
        self.service_function = stack.outputs["DemoServiceFunctionName"]

    def start(self, execution_input: Any) -> str:
        body = json.dumps(execution_input)
        response = self.sfn.start_execution(
            stateMachineArn=self.stack.state_machine_arn, name=f"t-{uuid.uuid4()}", input=body
        )
        arn: str = response["executionArn"]
        return arn

    def wait(self, arn: str, timeout: float = 60.0) -> Execution:
        deadline = time.monotonic() + timeout
        while True:
            described = self.sfn.describe_execution(executionArn=arn)
            if described["status"] != "RUNNING":
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"execution {arn} still running after {timeout} s")
            time.sleep(0.01)
        history = self.sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
        output = described.get("output")
        return Execution(
            arn=arn,
            status=described["status"],
            error=described.get("error"),
            cause=described.get("cause"),
            output=json.loads(output) if output else None,
            history=history,
        )

    def run(self, execution_input: Any) -> Execution:
        """Start one execution and wait for its end; stream effects are settled afterwards."""
        result = self.wait(self.start(execution_input))
        self.runtime.settle()
        return result

    def call(self, payload: Any = None, service: str = DEMO_SERVICE) -> Execution:
        request: dict[str, Any] = {"ServiceName": service}
        if payload is not None:
            request["Payload"] = payload
        return self.run(request)

    def item(self, service: str = DEMO_SERVICE) -> dict[str, Any] | None:
        response = self.table.get_item(Key={"ServiceName": service}, ConsistentRead=True)
        item: dict[str, Any] | None = response.get("Item")
        return item

    def items(self) -> list[dict[str, Any]]:
        """Every circuit item (read shards, copies of a circuit, left out: see ``shards``)."""
        items: list[dict[str, Any]] = self.table.scan(ConsistentRead=True)["Items"]
        return [i for i in items if "#" not in i["ServiceName"]]

    def shards(self, service: str = DEMO_SERVICE) -> dict[str, dict[str, Any]]:
        """The read shards of ``service`` that exist (``payment#1``: item), for a sharded circuit."""
        items: list[dict[str, Any]] = self.table.scan(ConsistentRead=True)["Items"]
        return {i["ServiceName"]: i for i in items if i["ServiceName"].startswith(f"{service}#")}

    def operator_writes(self, item: dict[str, Any]) -> None:
        """A plain PutItem, as an operator would do from the console or CLI; then the stream settles."""
        self.table.put_item(Item=item)
        self.runtime.settle()

    def service_calls(self) -> int:
        return self.service.count


@contextmanager
def deployed_breaker(assembly: Assembly, service: ScriptedService | None = None) -> Iterator[Breaker]:
    """The stack of ``assembly`` on a fresh moto, with the demo service played by ``service``."""
    service = service or ScriptedService()
    runtime = LambdaRuntime()
    with mock_aws(config=MOTO_CONFIG), runtime.installed():
        session = boto3.Session(region_name="us-east-1")
        stack = deploy_stack(assembly, session)
        warm_up(session, stack, runtime)
        runtime.stand_in(stack.outputs["DemoServiceFunctionName"], service)
        try:
            yield Breaker(session, stack, runtime, service)
        finally:
            service.release()


def warm_up(session: Any, stack: DeployedStack, runtime: LambdaRuntime) -> None:
    """One invocation of the demo function through moto's Lambda API before a test begins, then
    the records cleared: the first invocation in a process pays for moto's and boto3's set-up,
    which would otherwise count against a test's 1 s service timeout on a busy machine."""
    session.client("lambda").invoke(FunctionName=stack.outputs["DemoServiceFunctionName"], Payload=b"{}")
    runtime.invocations.clear()


def concurrently(count: int, action: Callable[[int], Any]) -> list[Any]:
    """Run ``action(i)`` for i in range(count) on threads, all released at once."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def worker(i: int) -> None:
        barrier.wait()
        results[i] = action(i)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results
