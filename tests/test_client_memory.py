"""The client's memory of open circuits (``sfn_breaker.client.memory``): after a ``CircuitOpen``
answer, calls fail fast in the client without starting an execution, until the earlier of the
circuit's retry time and the cap.

First the memory alone (no AWS), then the sync and the async client on the in-process emulator,
mirrored. Executions are counted by the emulator (``LocalBreaker.sync_executions``) and calls that
reached the service by its record of invocations, never by the client. Time moves through the
client's injected clock; nothing sleeps.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sfn_breaker.client import (
    AsyncBreakerClient,
    BreakerClient,
    CircuitOpenError,
    InvalidRequestError,
    ServiceCallError,
)
from sfn_breaker.client.memory import DEFAULT_REMEMBER_OPEN_SECONDS, OpenCircuitMemory
from sfn_breaker.errors import FROM_BREAKER, FROM_MEMORY
from sfn_breaker.local import LocalBreaker
from tests.local_fixtures import DEMO_SERVICE, service_calls

T0 = 1_800_000_000.0


class Clock:
    """A clock a test moves by hand."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def answer(service: str = "payment", retry_after: float | None = None) -> CircuitOpenError:
    """The breaker's ``CircuitOpen`` answer, open until ``retry_after`` (``None``: held open)."""
    until = None if retry_after is None else datetime.fromtimestamp(retry_after, tz=UTC)
    return CircuitOpenError(service, retry_after=until, cause=f"Circuit open for service {service}", execution_arn="x")


def remembered(memory: OpenCircuitMemory, service: str = "payment") -> bool:
    try:
        memory.check(service)
    except CircuitOpenError as exc:
        assert exc.source == FROM_MEMORY
        return True
    return False


# --------------------------------------------------------------------------- the memory alone


def test_the_default_cap_is_five_seconds_as_powertools_local_cache() -> None:
    assert DEFAULT_REMEMBER_OPEN_SECONDS == 5.0


def test_an_answer_is_remembered_until_the_cap_when_the_circuit_is_open_longer() -> None:
    clock = Clock()
    memory = OpenCircuitMemory(5, clock)
    memory.remember(answer(retry_after=T0 + 30))

    clock.now = T0 + 4.999
    assert remembered(memory)
    clock.now = T0 + 5
    assert not remembered(memory)


def test_an_answer_is_remembered_until_the_retry_time_when_it_comes_before_the_cap() -> None:
    clock = Clock()
    memory = OpenCircuitMemory(5, clock)
    memory.remember(answer(retry_after=T0 + 2))

    clock.now = T0 + 1.999
    assert remembered(memory)
    clock.now = T0 + 2
    assert not remembered(memory)


def test_a_circuit_held_open_without_an_end_is_remembered_until_the_cap() -> None:
    clock = Clock()
    memory = OpenCircuitMemory(5, clock)
    memory.remember(answer(retry_after=None))

    clock.now = T0 + 4.999
    assert remembered(memory)
    clock.now = T0 + 5
    assert not remembered(memory)


def test_a_retry_time_already_past_is_not_remembered() -> None:
    memory = OpenCircuitMemory(5, Clock())
    memory.remember(answer(retry_after=T0))

    assert not remembered(memory)


def test_a_cap_of_zero_turns_the_memory_off() -> None:
    memory = OpenCircuitMemory(0, Clock())
    memory.remember(answer(retry_after=T0 + 30))

    assert not memory.enabled
    assert not remembered(memory)


def test_a_negative_cap_is_refused() -> None:
    with pytest.raises(ValueError, match="0 \\(off\\) or more"):
        OpenCircuitMemory(-1, Clock())


def test_services_are_remembered_each_on_its_own() -> None:
    clock = Clock()
    memory = OpenCircuitMemory(5, clock)
    memory.remember(answer("payment", retry_after=T0 + 30))
    memory.remember(answer("orders", retry_after=T0 + 1))

    assert remembered(memory, "payment")
    assert remembered(memory, "orders")
    assert not remembered(memory, "inventory")
    clock.now = T0 + 1
    assert remembered(memory, "payment")
    assert not remembered(memory, "orders")
    memory.forget("payment")
    assert not remembered(memory, "payment")


def test_an_answer_from_memory_never_extends_the_memory() -> None:
    clock = Clock()
    memory = OpenCircuitMemory(5, clock)
    memory.remember(answer(retry_after=T0 + 30))
    clock.now = T0 + 4
    with pytest.raises(CircuitOpenError) as from_memory:
        memory.check("payment")

    memory.remember(from_memory.value)

    clock.now = T0 + 5
    assert not remembered(memory)


def test_an_answer_from_memory_says_so_and_keeps_the_breakers_words() -> None:
    memory = OpenCircuitMemory(5, Clock())
    original = answer(retry_after=T0 + 30)
    memory.remember(original)

    with pytest.raises(CircuitOpenError) as caught:
        memory.check("payment")

    error = caught.value
    assert (error.source, error.from_memory, original.from_memory) == (FROM_MEMORY, True, False)
    assert (error.cause, error.retry_after, error.execution_arn) == (original.cause, original.retry_after, None)
    assert error.remembered_until == datetime.fromtimestamp(T0 + 5, tz=UTC)
    assert "from this client's memory" in str(error) and "no execution was started" in str(error)
    assert memory.executions_saved == 1


# --------------------------------------------------------------------------- the sync client


def open_circuit(client: BreakerClient, local: LocalBreaker) -> None:
    """A failure opens the circuit (the breaker's threshold is one failed execution)."""
    with pytest.raises(ServiceCallError):
        client.call(DEMO_SERVICE, {"mode": "fail"})
    local.runtime.settle()


def breaker_answer(call: Callable[[], Any]) -> CircuitOpenError:
    with pytest.raises(CircuitOpenError) as caught:
        call()
    return caught.value


def test_while_remembered_calls_fail_fast_without_an_execution(local: LocalBreaker) -> None:
    """GIVEN the breaker answered CircuitOpen once
    WHEN the caller calls again and again within the cap
    THEN no execution starts and the service is not called; every answer says it came from memory."""
    clock = Clock(datetime.now(UTC).timestamp())
    client = local.client(clock=clock)
    open_circuit(client, local)
    first = breaker_answer(lambda: client.call(DEMO_SERVICE))
    executions, calls = local.sync_executions, service_calls(local)

    answers = [breaker_answer(lambda: client.call(DEMO_SERVICE)) for _ in range(5)]

    assert first.source == FROM_BREAKER and first.execution_arn is not None
    assert all(a.from_memory and a.retry_after == first.retry_after for a in answers)
    assert (local.sync_executions, service_calls(local)) == (executions, calls)
    assert client.open_circuits.executions_saved == 5


def test_the_memory_ends_at_the_cap_when_the_circuit_is_open_longer(local: LocalBreaker) -> None:
    clock = Clock(datetime.now(UTC).timestamp())
    client = local.client(clock=clock)
    open_circuit(client, local)
    start = clock.now
    assert breaker_answer(lambda: client.call(DEMO_SERVICE)).source == FROM_BREAKER  # open for 30 s
    executions = local.sync_executions

    clock.now = start + 4.999
    assert breaker_answer(lambda: client.call(DEMO_SERVICE)).from_memory
    assert local.sync_executions == executions
    clock.now = start + 5
    assert breaker_answer(lambda: client.call(DEMO_SERVICE)).source == FROM_BREAKER
    assert local.sync_executions == executions + 1


def test_the_memory_ends_at_the_circuits_retry_time_when_it_comes_first(local: LocalBreaker) -> None:
    """The client's clock is set to 2 s before the circuit's retry time: the memory ends then,
    3 s before the cap would have ended it."""
    clock = Clock(datetime.now(UTC).timestamp())
    client = local.client(clock=clock)
    open_circuit(client, local)
    retry_after = breaker_answer(lambda: client.call(DEMO_SERVICE)).retry_after
    assert retry_after is not None
    client.open_circuits.forget()
    clock.now = retry_after.timestamp() - 2
    assert breaker_answer(lambda: client.call(DEMO_SERVICE)).source == FROM_BREAKER
    executions = local.sync_executions

    clock.now = retry_after.timestamp() - 0.001
    assert breaker_answer(lambda: client.call(DEMO_SERVICE)).from_memory
    assert local.sync_executions == executions
    clock.now = retry_after.timestamp()
    assert breaker_answer(lambda: client.call(DEMO_SERVICE)).source == FROM_BREAKER  # the emulator's clock: still open
    assert local.sync_executions == executions + 1


def test_a_cap_of_zero_starts_an_execution_for_every_call(local: LocalBreaker) -> None:
    client = local.client(remember_open_seconds=0)
    open_circuit(client, local)
    executions = local.sync_executions

    answers = [breaker_answer(lambda: client.call(DEMO_SERVICE)) for _ in range(3)]

    assert [a.source for a in answers] == [FROM_BREAKER] * 3
    assert local.sync_executions == executions + 3


def test_a_negative_cap_is_refused_by_the_client(local: LocalBreaker) -> None:
    with pytest.raises(ValueError, match="remember_open_seconds"):
        local.client(remember_open_seconds=-1)


def test_a_remembered_service_does_not_hold_back_calls_to_another(local: LocalBreaker) -> None:
    client = local.client()
    open_circuit(client, local)
    breaker_answer(lambda: client.call(DEMO_SERVICE))
    executions = local.sync_executions

    with pytest.raises(InvalidRequestError):  # the breaker answered: an execution ran
        client.call("refunds")

    assert local.sync_executions == executions + 1
    assert list(client.open_circuits.remembered()) == [DEMO_SERVICE]


@pytest.mark.parametrize("operation", ["close", "force_closed"])
def test_an_operator_closing_the_circuit_through_the_client_is_not_ignored_by_it(
    local: LocalBreaker, operation: str
) -> None:
    client = local.client()
    open_circuit(client, local)
    breaker_answer(lambda: client.call(DEMO_SERVICE))
    calls = service_calls(local)

    getattr(client, operation)(DEMO_SERVICE)
    local.runtime.settle()

    assert client.call(DEMO_SERVICE, {"n": 1})["echo"] == {"n": 1}
    assert service_calls(local) == calls + 1


def test_reading_the_circuit_through_the_client_forgets_what_it_remembered(local: LocalBreaker) -> None:
    """GIVEN another client closed the circuit, which this one still remembers open
    WHEN this client reads the circuit's status THEN its next call goes to the breaker."""
    client = local.client()
    open_circuit(client, local)
    breaker_answer(lambda: client.call(DEMO_SERVICE))
    local.client().close(DEMO_SERVICE)
    local.runtime.settle()
    assert breaker_answer(lambda: client.call(DEMO_SERVICE)).from_memory
    calls = service_calls(local)

    client.status(DEMO_SERVICE)

    assert client.call(DEMO_SERVICE, {"n": 1})["echo"] == {"n": 1}
    assert service_calls(local) == calls + 1


def test_threads_sharing_a_client_all_fail_fast_from_its_memory(local: LocalBreaker) -> None:
    client = local.client()
    open_circuit(client, local)
    breaker_answer(lambda: client.call(DEMO_SERVICE))
    executions = local.sync_executions
    sources: list[str] = []
    lock = threading.Lock()

    def caller() -> None:
        for _ in range(25):
            error = breaker_answer(lambda: client.call(DEMO_SERVICE))
            with lock:
                sources.append(error.source)

    threads = [threading.Thread(target=caller) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sources == [FROM_MEMORY] * 200
    assert client.open_circuits.executions_saved == 200
    assert local.sync_executions == executions


# --------------------------------------------------------------------------- the async client


def async_client(local: LocalBreaker, **kwargs: Any) -> AsyncBreakerClient:
    return local.async_client(**kwargs)


async def async_answer(client: AsyncBreakerClient) -> CircuitOpenError:
    with pytest.raises(CircuitOpenError) as caught:
        await client.call(DEMO_SERVICE)
    return caught.value


async def async_open_circuit(client: AsyncBreakerClient, local: LocalBreaker) -> None:
    with pytest.raises(ServiceCallError):
        await client.call(DEMO_SERVICE, {"mode": "fail"})
    local.runtime.settle()


def test_async_while_remembered_calls_fail_fast_on_the_loop_without_an_execution(
    local: LocalBreaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario() -> None:
        async with async_client(local) as client:
            await async_open_circuit(client, local)
            first = await async_answer(client)
            executions, calls = local.sync_executions, service_calls(local)

            def no_thread_hop(*args: Any, **kwargs: Any) -> Any:
                raise AssertionError("a remembered open circuit went to the thread pool")

            monkeypatch.setattr(client, "_run", no_thread_hop)
            answers = [await async_answer(client) for _ in range(5)]

            assert first.source == FROM_BREAKER
            assert all(a.from_memory for a in answers)
            assert (local.sync_executions, service_calls(local)) == (executions, calls)

    asyncio.run(scenario())


def test_async_the_memory_ends_at_the_earlier_of_the_retry_time_and_the_cap(local: LocalBreaker) -> None:
    clock = Clock(datetime.now(UTC).timestamp())

    async def scenario() -> None:
        async with async_client(local, clock=clock) as client:
            await async_open_circuit(client, local)
            start = clock.now
            retry_after = (await async_answer(client)).retry_after
            assert retry_after is not None and retry_after > datetime.fromtimestamp(start + 5, tz=UTC)
            executions = local.sync_executions

            clock.now = start + 4.999
            assert (await async_answer(client)).from_memory
            clock.now = start + 5  # the cap
            assert (await async_answer(client)).source == FROM_BREAKER
            assert local.sync_executions == executions + 1

            client.open_circuits.forget()
            clock.now = retry_after.timestamp() - 2
            assert (await async_answer(client)).source == FROM_BREAKER
            clock.now = retry_after.timestamp() - 0.001
            assert (await async_answer(client)).from_memory
            clock.now = retry_after.timestamp()  # the retry time, before the cap
            assert (await async_answer(client)).source == FROM_BREAKER
            assert local.sync_executions == executions + 3

    asyncio.run(scenario())


def test_async_a_cap_of_zero_starts_an_execution_for_every_call(local: LocalBreaker) -> None:
    async def scenario() -> None:
        async with async_client(local, remember_open_seconds=0) as client:
            await async_open_circuit(client, local)
            executions = local.sync_executions
            answers = [await async_answer(client) for _ in range(3)]
            assert [a.source for a in answers] == [FROM_BREAKER] * 3
            assert local.sync_executions == executions + 3

    asyncio.run(scenario())


def test_async_closing_through_the_client_forgets_it_and_other_services_are_not_held_back(
    local: LocalBreaker,
) -> None:
    async def scenario() -> None:
        async with async_client(local) as client:
            await async_open_circuit(client, local)
            await async_answer(client)
            executions = local.sync_executions
            with pytest.raises(InvalidRequestError):
                await client.call("refunds")
            assert local.sync_executions == executions + 1

            await client.close(DEMO_SERVICE)
            local.runtime.settle()
            assert (await client.call(DEMO_SERVICE, {"n": 2}))["echo"] == {"n": 2}

    asyncio.run(scenario())


def test_the_retry_time_read_from_the_breaker_is_in_the_future(local: LocalBreaker) -> None:
    """The memory's end comes from the cause of the breaker's answer (``retry_after``)."""
    client = local.client()
    open_circuit(client, local)
    error = breaker_answer(lambda: client.call(DEMO_SERVICE))

    assert error.retry_after is not None
    assert datetime.now(UTC) < error.retry_after <= datetime.now(UTC) + timedelta(seconds=31)
