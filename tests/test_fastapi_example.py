"""The FastAPI example: each outcome of the breaker becomes the HTTP response a client can act on."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import datetime

import pytest
from fastapi.testclient import TestClient

from examples.fastapi_app import create_app
from sfn_breaker.client import AsyncBreakerClient
from sfn_breaker.local import LocalBreaker
from sfn_breaker.local.assembly import Assembly
from tests.local_fixtures import item, quiet_functions, reset_circuits, service_calls

OPEN_SECONDS = 30  # the fast assembly's openDurationSeconds


@pytest.fixture(scope="module")
def local(fast_assembly: Assembly) -> Iterator[LocalBreaker]:
    with quiet_functions(), LocalBreaker(assembly=fast_assembly) as running:
        yield running


@pytest.fixture(autouse=True)
def _closed(local: LocalBreaker) -> None:
    reset_circuits(local)


@pytest.fixture
def http(local: LocalBreaker) -> Iterator[TestClient]:
    with TestClient(create_app(local.async_client)) as client:
        yield client


def test_a_payment_goes_through(http: TestClient) -> None:
    response = http.post("/payments", json={"amount": 12.5})

    assert response.status_code == 200
    assert response.json() == {
        "status": "paid",
        "service": "payment",
        "echo": {"amount": 12.5, "currency": "EUR", "mode": "ok"},
    }


def test_a_failing_service_is_502_then_the_open_circuit_is_503_with_retry_after(
    http: TestClient, local: LocalBreaker
) -> None:
    failed = http.post("/payments", json={"amount": 1, "mode": "fail"})
    local.runtime.settle()
    calls = service_calls(local)
    fast_failed = http.post("/payments", json={"amount": 1})

    assert failed.status_code == 502
    assert failed.json() == {"error": "PaymentFailed", "detail": "the payment provider is down"}
    assert fast_failed.status_code == 503
    assert fast_failed.json()["error"] == "CircuitOpen"
    # Seconds until the recorded expiry (whole seconds, so at most one more than the open duration).
    expiry = int(item(local)["ExpiryTimeStamp"])  # type: ignore[index]
    retry_after = int(fast_failed.headers["Retry-After"])
    assert expiry - time.time() <= retry_after <= OPEN_SECONDS + 1
    assert datetime.fromisoformat(fast_failed.json()["retryAfter"]).timestamp() == expiry
    assert service_calls(local) == calls


def test_one_client_serves_every_request_and_its_memory_of_an_open_circuit_saves_executions(
    local: LocalBreaker,
) -> None:
    made: list[AsyncBreakerClient] = []

    def client_factory() -> AsyncBreakerClient:
        made.append(local.async_client())
        return made[-1]

    with TestClient(create_app(client_factory)) as http:
        http.post("/payments", json={"amount": 1, "mode": "fail"})  # opens the circuit
        local.runtime.settle()
        answered_by_the_breaker = http.post("/payments", json={"amount": 1})
        executions = local.sync_executions
        answered_from_memory = http.post("/payments", json={"amount": 1})
        started_for_the_second = local.sync_executions - executions

    assert (answered_by_the_breaker.status_code, answered_from_memory.status_code) == (503, 503)
    assert started_for_the_second == 0  # the shared client remembered the open circuit
    assert len(made) == 1
    assert made[0].open_circuits.executions_saved == 1
    with pytest.raises(RuntimeError, match="shutdown"):  # closed when the app shut down
        asyncio.run(made[0].status("payment"))


def test_a_circuit_held_open_is_503_without_retry_after(http: TestClient, local: LocalBreaker) -> None:
    local.client().force_open("payment")

    response = http.post("/payments", json={"amount": 1})

    assert response.status_code == 503
    assert "Retry-After" not in response.headers
    assert "retryAfter" not in response.json()
    assert "until further notice" in response.json()["detail"]


@pytest.mark.slow
def test_a_service_timeout_is_504(http: TestClient) -> None:
    response = http.post("/payments", json={"amount": 1, "mode": "slow", "delayMs": 1500})

    assert response.status_code == 504
    assert response.json()["error"] == "ServiceTimeout"


def test_an_unknown_service_is_404(http: TestClient, local: LocalBreaker) -> None:
    calls = service_calls(local)

    response = http.post("/services/refunds", json={"amount": 1})

    assert response.status_code == 404
    assert response.json()["error"] == "UnknownService"
    assert service_calls(local) == calls


def test_a_payload_that_is_not_an_object_is_400(http: TestClient) -> None:
    response = http.post("/services/payment", json=[1, 2])

    assert response.status_code == 400
    assert response.json()["error"] == "InvalidInput"


def test_a_bad_payment_request_is_refused_by_the_app(http: TestClient, local: LocalBreaker) -> None:
    executions = local.sync_executions

    response = http.post("/payments", json={"amount": -5})

    assert response.status_code == 422
    assert local.sync_executions == executions


def test_an_unreachable_breaker_is_500(local: LocalBreaker) -> None:
    def unreachable() -> object:
        from sfn_breaker.client import AsyncBreakerClient

        return AsyncBreakerClient(
            session=local.session, endpoint_url="http://127.0.0.1:9", state_machine_arn="arn:x", table_name="t"
        )

    with TestClient(create_app(unreachable)) as http:  # type: ignore[arg-type]
        response = http.post("/payments", json={"amount": 1})

    assert response.status_code == 500
    assert response.json()["error"] == "ConfigurationError"


def test_an_unreadable_circuit_under_a_fail_fast_policy_is_503_without_retry_after() -> None:
    from sfn_breaker.client import CircuitStoreUnavailableError

    class Unreadable:
        async def call(self, service: str, payload: object) -> object:
            raise CircuitStoreUnavailableError(service, cause="The circuit of service payment could not be read")

        async def __aenter__(self) -> Unreadable:
            return self

        async def __aexit__(self, *exc: object) -> None:
            pass

    with TestClient(create_app(Unreadable)) as http:  # type: ignore[arg-type]
        response = http.post("/payments", json={"amount": 1})

    assert response.status_code == 503
    assert "Retry-After" not in response.headers
    assert response.json() == {
        "error": "CircuitStoreUnavailable",
        "detail": "The circuit of service payment could not be read",
    }
