"""The strategies: no breaker, the reference design, this project (and ``powertools.Powertools``).

Each runs its real code against the emulator; ``base.Strategy`` says what a strategy does.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from bench.outage.base import Caller, Emulator, Outcome, ServiceFailed, Strategy, delete_all, invoke_service, uncounted
from bench.outage.powertools import Powertools
from bench.outage.service import always_down
from bench.reference_design import deploy as reference_deploy
from sfn_breaker.contract import DEMO_SERVICE, TABLE_OUTPUT
from sfn_breaker.core import model, reading
from sfn_breaker.core.model import CircuitState
from sfn_breaker.errors import BreakerError, CircuitOpenError

__all__ = ["NoBreaker", "Powertools", "ReferenceDesign", "ThisProject", "build"]


class NoBreaker(Strategy):
    """Callers invoke the service themselves, with this project's default timeout and retry
    policy: ``max_attempts`` attempts, each given up after the shared timeout, with the
    project's backoff waits between them (``BreakerSettings.retry_delays``)."""

    name = "no breaker"

    def __init__(self, emulator: Emulator) -> None:
        super().__init__(emulator)
        defaults = _project_settings().BreakerSettings()
        self.max_attempts = defaults.max_attempts
        self.delays = defaults.retry_delays()
        self.direct_attempts = 0

    def new_caller(self) -> Caller:
        client = self.emulator.session.client("lambda")
        executor = self._executor()
        function, timeout = self.emulator.service_function, self.settings.timeout

        def call() -> Outcome:
            for attempt in range(self.max_attempts):
                with self._lock:
                    self.direct_attempts = (self.direct_attempts or 0) + 1
                try:
                    invoke_service(client, executor, function, timeout)
                    return Outcome.OK
                except ServiceFailed:
                    if attempt < len(self.delays):
                        time.sleep(self.delays[attempt])
            return Outcome.FAILED

        return call


class ReferenceDesign(Strategy):
    """The AWS sample (``bench.reference_design``): a Standard workflow, started and polled."""

    name = "reference design"

    def __init__(self, emulator: Emulator) -> None:
        super().__init__(emulator)
        self.design = reference_deploy.deploy(
            emulator.session,
            emulator.runtime,
            timeout_seconds=self.settings.timeout,
            open_seconds=self.settings.open_period,
        )
        self.machine_arn = self.design.state_machine_arn
        self._table = emulator.session.client("dynamodb")

    def new_caller(self) -> Caller:
        sfn = self.emulator.session.client("stepfunctions")
        body = json.dumps({"TargetLambda": self.emulator.service_function})

        def call() -> Outcome:
            arn = sfn.start_execution(stateMachineArn=self.machine_arn, name=f"ref-{uuid.uuid4()}", input=body)[
                "executionArn"
            ]
            while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
                time.sleep(0.02)
            if described["status"] == "SUCCEEDED":
                return Outcome.OK
            # Its Fail state names no error: whether the service was tried is in the history.
            events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
            tried = any(e.get("stateEnteredEventDetails", {}).get("name") == "Execute Lambda" for e in events)
            return Outcome.FAILED if tried else Outcome.FAST_FAIL

        return call

    def circuit_closed(self) -> bool:
        with uncounted():
            items = self._table.query(
                TableName=self.design.table_name,
                KeyConditionExpression="ServiceName = :name AND ExpireTimeStamp > :now",
                ExpressionAttributeValues={
                    ":name": {"S": self.emulator.service_function},
                    ":now": {"N": str(int(time.time()))},
                },
                ConsistentRead=True,
            )["Items"]
        return not items

    def reset(self) -> None:
        delete_all(self._table, self.design.table_name, ("ServiceName", "ExpireTimeStamp"))

    def open_circuit(self) -> None:
        """What its workflow does after a failed execution: invoke UpdateCircuitStatus."""
        self.emulator.session.client("lambda").invoke(
            FunctionName=self.design.update_function,
            Payload=json.dumps({"TargetLambda": self.emulator.service_function, "CircuitStatus": ""}).encode(),
        )


class ThisProject(Strategy):
    """The demo stack's workflow through the real ``BreakerClient``, with the client's defaults."""

    name = "this project"

    def __init__(self, emulator: Emulator) -> None:
        super().__init__(emulator)
        self.machine_arn = emulator.local.stack.state_machine_arn
        self.table_name = emulator.local.stack.outputs[TABLE_OUTPUT]
        self._table = emulator.session.client("dynamodb")

    def new_caller(self) -> Caller:
        client = self.emulator.local.client()

        def call() -> Outcome:
            try:
                client.call(DEMO_SERVICE, {})
            except CircuitOpenError:
                return Outcome.FAST_FAIL
            except BreakerError:
                return Outcome.FAILED
            return Outcome.OK

        return call

    def circuit_closed(self) -> bool:
        with uncounted():
            item = self._table.get_item(
                TableName=self.table_name, Key={model.KEY: {"S": DEMO_SERVICE}}, ConsistentRead=True
            ).get("Item")
        if item is None:
            return True
        forced = item.get(model.FORCED, {}).get("S")
        expiry = reading.parse_expiry(int(item[model.EXPIRY]["N"])) if model.EXPIRY in item else None
        state = reading.circuit_state(forced, expiry, time.time())
        return state in (CircuitState.CLOSED, CircuitState.FORCED_CLOSED)

    def reset(self) -> None:
        self.emulator.runtime.settle()
        delete_all(self._table, self.table_name, (model.KEY,))
        self.emulator.runtime.settle()

    def open_circuit(self) -> None:
        """Executions fail on every attempt until the workflow has opened the circuit (one, with
        the default threshold of 1)."""
        board = self.emulator.switchboard
        saved, board.current = board.current, always_down()
        try:
            call = self.new_caller()
            for _ in range(5):
                call()
                self.emulator.runtime.settle()
                if not self.circuit_closed():
                    break
        finally:
            board.current = saved


def _project_settings() -> Any:
    """``sfn_breaker.cdk.settings``, loaded on its own: it needs only the standard library and
    ``sfn_breaker.core``, while importing the ``sfn_breaker.cdk`` package starts the CDK."""
    spec = importlib.util.find_spec("sfn_breaker.cdk")  # imports sfn_breaker, not sfn_breaker.cdk
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("sfn_breaker.cdk is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "settings.py"
    module_spec = importlib.util.spec_from_file_location("bench_project_settings", path)
    if module_spec is None or module_spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_spec.name] = module  # dataclasses look their module up
    module_spec.loader.exec_module(module)
    return module


def build(name: str, emulator: Emulator) -> Strategy:
    kinds: dict[str, type[Strategy]] = {
        NoBreaker.name: NoBreaker,
        ReferenceDesign.name: ReferenceDesign,
        Powertools.name: Powertools,
        ThisProject.name: ThisProject,
    }
    return kinds[name](emulator)
