"""The four strategies, each running its real code against the emulator.

A strategy makes callers (``new_caller``: one caller is one client process or one Lambda
execution environment), tells whether its circuit is closed (``circuit_closed``, read without
counting), clears its state between runs (``reset``) and opens its circuit its own way for the
operation counts (``open_circuit``).
"""

from __future__ import annotations

import enum
import importlib.util
import json
import sys
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from bench.outage.counting import DynamoDBRecorder, uncounted
from bench.outage.service import Switchboard, always_down
from bench.outage.settings import Settings
from bench.reference_design import deploy as reference_deploy
from circuit_breaker.contract import DEMO_SERVICE, TABLE_OUTPUT
from circuit_breaker.core import model, reading
from circuit_breaker.core.model import CircuitState
from circuit_breaker.errors import BreakerError, CircuitOpenError


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


def _delete_all(client: Any, table: str, keys: tuple[str, ...]) -> None:
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
        _delete_all(self._table, self.design.table_name, ("ServiceName", "ExpireTimeStamp"))

    def open_circuit(self) -> None:
        """What its workflow does after a failed execution: invoke UpdateCircuitStatus."""
        self.emulator.session.client("lambda").invoke(
            FunctionName=self.design.update_function,
            Payload=json.dumps({"TargetLambda": self.emulator.service_function, "CircuitStatus": ""}).encode(),
        )


POWERTOOLS_TABLE = "PowertoolsCircuitBreaker"
POWERTOOLS_CIRCUIT = DEMO_SERVICE


class Powertools(Strategy):
    """Powertools for AWS Lambda's ``circuit_breaker`` with ``CircuitBreakerDynamoDBPersistence``.

    Each caller is one execution environment: its own persistence layer (its local cache) and
    its own copy of the utility's module state (the consecutive-failure counters that Powertools
    keeps per environment at module level), loaded from the installed source. The protected
    function is one ``Invoke`` of the service with the shared timeout: Powertools has no retries.
    The config is the default, with ``recovery_timeout`` set to the shared open period and
    ``local_cache_max_age`` scaled like every other duration.
    """

    name = "Powertools"

    def __init__(self, emulator: Emulator) -> None:
        super().__init__(emulator)
        self._table = emulator.session.client("dynamodb")
        self._table.create_table(
            TableName=POWERTOOLS_TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        self._table.update_time_to_live(
            TableName=POWERTOOLS_TABLE, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiration"}
        )
        self._environments = 0

    def config(self) -> Any:
        from aws_lambda_powertools.utilities.circuit_breaker import CircuitBreakerConfig

        return CircuitBreakerConfig(
            recovery_timeout=self.settings.open_period, local_cache_max_age=self.settings.powertools_cache
        )

    def _environment(self) -> Callable[..., Any]:
        """A fresh execution environment's ``circuit_breaker`` decorator."""
        # The package re-exports the decorator under its module's name: fetch the modules themselves.
        base = importlib.import_module("aws_lambda_powertools.utilities.circuit_breaker.base")
        decorator = importlib.import_module("aws_lambda_powertools.utilities.circuit_breaker.circuit_breaker")

        self._environments += 1
        own_base = _module_copy(base, f"bench_powertools_env{self._environments}_base")
        own_decorator = _module_copy(decorator, f"bench_powertools_env{self._environments}_decorator")
        own_decorator.CircuitBreakerHandler = own_base.CircuitBreakerHandler  # type: ignore[attr-defined]
        factory: Callable[..., Any] = own_decorator.circuit_breaker
        return factory

    def new_caller(self) -> Caller:
        from aws_lambda_powertools.utilities.circuit_breaker import CircuitBreakerOpenError
        from aws_lambda_powertools.utilities.circuit_breaker.persistence import CircuitBreakerDynamoDBPersistence

        client = self.emulator.session.client("lambda")
        executor = self._executor()
        persistence = CircuitBreakerDynamoDBPersistence(
            table_name=POWERTOOLS_TABLE, boto3_client=self.emulator.session.client("dynamodb")
        )
        function, timeout = self.emulator.service_function, self.settings.timeout

        @self._environment()(name=POWERTOOLS_CIRCUIT, persistence_store=persistence, config=self.config())
        def call_service() -> Any:
            return invoke_service(client, executor, function, timeout)

        def call() -> Outcome:
            try:
                call_service()
            except CircuitBreakerOpenError:
                return Outcome.FAST_FAIL
            except ServiceFailed:
                return Outcome.FAILED
            return Outcome.OK

        return call

    def circuit_closed(self) -> bool:
        with uncounted():
            item = self._table.get_item(
                TableName=POWERTOOLS_TABLE, Key={"id": {"S": POWERTOOLS_CIRCUIT}}, ConsistentRead=True
            ).get("Item")
        return item is None or item["state"]["S"] == "CLOSED"

    def reset(self) -> None:
        _delete_all(self._table, POWERTOOLS_TABLE, ("id",))

    def open_circuit(self) -> None:
        """One environment sees ``failure_threshold`` consecutive failures: it trips the circuit."""
        board = self.emulator.switchboard
        saved, board.current = board.current, always_down()
        try:
            call = self.new_caller()
            for _ in range(self.config().failure_threshold):
                call()
        finally:
            board.current = saved


def _project_settings() -> Any:
    """``circuit_breaker.cdk.settings``, loaded on its own: it needs only the standard library and
    ``circuit_breaker.core``, while importing the ``circuit_breaker.cdk`` package starts the CDK."""
    spec = importlib.util.find_spec("circuit_breaker.cdk")  # imports circuit_breaker, not circuit_breaker.cdk
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("circuit_breaker.cdk is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "settings.py"
    module_spec = importlib.util.spec_from_file_location("bench_project_settings", path)
    if module_spec is None or module_spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_spec.name] = module  # dataclasses look their module up
    module_spec.loader.exec_module(module)
    return module


def _module_copy(module: ModuleType, name: str) -> ModuleType:
    """A second instance of ``module``, executed from its own source: its globals are its own."""
    spec = importlib.util.spec_from_file_location(name, module.__file__ or "")
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load a copy of {module.__name__}")
    copy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(copy)
    return copy


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
        _delete_all(self._table, self.table_name, (model.KEY,))
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


def build(name: str, emulator: Emulator) -> Strategy:
    kinds: dict[str, type[Strategy]] = {
        NoBreaker.name: NoBreaker,
        ReferenceDesign.name: ReferenceDesign,
        Powertools.name: Powertools,
        ThisProject.name: ThisProject,
    }
    return kinds[name](emulator)
