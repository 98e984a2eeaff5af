"""The async client against the in-process emulator: the sync client's paths (``test_client_sync.py``)
as coroutines, and the thread pool they run on."""

from __future__ import annotations

import asyncio
import re
import traceback
from pathlib import Path
from typing import Any

import pytest

from sfn_breaker.client import (
    AsyncBreakerClient,
    CircuitOpenError,
    ConfigurationError,
    InvalidRequestError,
    ServiceCallError,
)
from sfn_breaker.contract import MAX_INPUT_BYTES
from sfn_breaker.core.model import CircuitState
from sfn_breaker.errors import NOTHING_CONFIGURED
from sfn_breaker.local import LocalBreaker
from tests.harness import REPOSITORY
from tests.local_fixtures import DEMO_SERVICE, NO_AWS_ENV, ascii_payload, chinese_payload, service_calls

# --------------------------------------------------------------------------- calling, reading and operating circuits


def test_the_async_client_has_every_path(local: LocalBreaker) -> None:
    async def scenario() -> None:
        async with AsyncBreakerClient(session=local.session, endpoint_url=local.endpoint_url) as client:
            assert (await client.call(DEMO_SERVICE, {"n": 1}))["echo"] == {"n": 1}
            with pytest.raises(ServiceCallError) as failed:
                await client.call(DEMO_SERVICE, {"mode": "fail"})
            assert failed.value.error == "PaymentFailed"
            with pytest.raises(CircuitOpenError) as fast_failed:
                await client.call(DEMO_SERVICE)
            assert fast_failed.value.retry_after is not None
            assert (await client.status(DEMO_SERVICE)).state is CircuitState.OPEN
            with pytest.raises(InvalidRequestError):
                await client.call("refunds")
            assert (await client.close(DEMO_SERVICE)).after.state is CircuitState.CLOSED
            assert (await client.force_open(DEMO_SERVICE, for_seconds=60)).after.state is CircuitState.FORCED_OPEN
            assert (await client.force_closed(DEMO_SERVICE)).after.state is CircuitState.FORCED_CLOSED
            assert [v.state for v in await client.list_circuits()] == [CircuitState.FORCED_CLOSED]
            assert await client.registered_services() == ["payment"]

    asyncio.run(scenario())
    local.runtime.settle()


def test_the_docs_async_example_runs_as_written(
    local: LocalBreaker, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """docs/calling.md's example, run as a script: it finds the emulator as a user's program does
    (AWS_ENDPOINT_URL), and its three payments reach the service."""
    (example,) = [
        block
        for block in re.findall(r"```python\n(.*?)```", (REPOSITORY / "docs" / "calling.md").read_text(), re.DOTALL)
        if "AsyncBreakerClient(max_workers=20)" in block
    ]
    for variable, value in {
        "AWS_ENDPOINT_URL": local.endpoint_url,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
    }.items():
        monkeypatch.setenv(variable, value)
    before = service_calls(local)

    exec(compile(example, "docs/calling.md", "exec"), {"__name__": "__main__"})

    assert service_calls(local) - before == 3
    assert capsys.readouterr().out.count("'status': 'paid'") == 3


# --------------------------------------------------------------------------- its own thread pool


def test_the_async_client_never_blocks_the_event_loop(local: LocalBreaker) -> None:
    """While a call waits on a slow service, other coroutines keep running."""

    async def scenario() -> tuple[int, Any]:
        async with local.async_client() as client:
            call = asyncio.ensure_future(client.call(DEMO_SERVICE, {"mode": "ok", "delayMs": 300}))
            ticks = 0
            while not call.done():
                await asyncio.sleep(0.01)
                ticks += 1
            return ticks, await call

    ticks, result = asyncio.run(scenario())

    assert result["status"] == "paid"
    assert ticks > 1  # a blocking call would have held the loop until it returned


def test_the_async_client_runs_calls_concurrently_on_its_bounded_pool(local: LocalBreaker) -> None:
    calls = service_calls(local)

    async def scenario() -> list[Any]:
        async with local.async_client(max_workers=4) as client:
            assert client.max_workers == 4
            return await asyncio.gather(*(client.call(DEMO_SERVICE, {"n": n}) for n in range(8)))

    results = asyncio.run(scenario())

    assert [r["echo"]["n"] for r in results] == list(range(8))
    assert service_calls(local) == calls + 8


# --------------------------------------------------------------------------- nothing configured


def test_without_credentials_region_or_emulator_the_async_client_says_so_alone(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name, value in {**NO_AWS_ENV, "AWS_DEFAULT_REGION": None, "AWS_REGION": None}.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("BREAKER_STATE_DIR", str(tmp_path))  # no emulator recorded there

    async def scenario() -> ConfigurationError:
        async with AsyncBreakerClient() as client:
            with pytest.raises(ConfigurationError) as raised:
                await client.call(DEMO_SERVICE)
            return raised.value

    error = asyncio.run(scenario())

    assert str(error) == NOTHING_CONFIGURED
    assert error.__cause__ is None and error.__suppress_context__  # botocore's NoRegionError is not shown
    assert "NoRegionError" not in "".join(traceback.format_exception(error))


# --------------------------------------------------------------------------- payload sizes


def test_the_async_client_sends_utf8_and_names_a_request_too_large_for_the_breaker(local: LocalBreaker) -> None:
    payload = chinese_payload(200_000)
    calls = service_calls(local)

    async def scenario() -> None:
        async with AsyncBreakerClient(session=local.session, endpoint_url=local.endpoint_url) as client:
            assert (await client.call(DEMO_SERVICE, payload))["echo"] == payload
            with pytest.raises(InvalidRequestError) as refused:
                await client.call(DEMO_SERVICE, chinese_payload(MAX_INPUT_BYTES + 10))
            assert refused.value.error == "ValidationException"
            with pytest.raises(InvalidRequestError) as too_large:
                await client.call(DEMO_SERVICE, ascii_payload(262_000))
            assert too_large.value.error == "States.DataLimitExceeded"
            assert "The service was not called" in too_large.value.cause

    asyncio.run(scenario())
    assert service_calls(local) == calls + 1  # only the call that fitted reached the service
