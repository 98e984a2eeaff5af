"""Powertools for AWS Lambda's circuit breaker, one execution environment per caller."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from types import ModuleType
from typing import Any

from bench.outage.base import Caller, Emulator, Outcome, ServiceFailed, Strategy, delete_all, invoke_service, uncounted
from bench.outage.service import always_down
from sfn_breaker.contract import DEMO_SERVICE

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
        delete_all(self._table, POWERTOOLS_TABLE, ("id",))

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


def _module_copy(module: ModuleType, name: str) -> ModuleType:
    """A second instance of ``module``, executed from its own source: its globals are its own."""
    spec = importlib.util.spec_from_file_location(name, module.__file__ or "")
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load a copy of {module.__name__}")
    copy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(copy)
    return copy
