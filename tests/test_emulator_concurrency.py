"""The emulator under concurrency: many executions at once all finish, each with its own result,
and an execution whose interpreter fails ends at once instead of hanging.

moto's interpreter had two ways to hang a caller (``sfn_breaker.local.interpreter``): its
definition parser shares one scope stack between threads (an ``IndexError`` under 50 to 80
concurrent parses, the execution's thread dead and the execution ``RUNNING`` for ever), and its
``StopExecution`` failed on an execution whose program had not started. The speed-ups share one
parsed program between executions; these tests check that each execution still keeps its own
input, history and output, and that the shared program holds nothing of theirs.

Counts and outcomes are asserted, never timings: a burst is only bounded by a generous timeout.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import pytest
from botocore.config import Config

from sfn_breaker.client import BreakerClient, ServiceCallError
from sfn_breaker.local import LocalBreaker
from sfn_breaker.local.interpreter import INTERPRETER_FAILED, fingerprint
from tests.conftest import FAST_CONTEXT
from tests.local_fixtures import DEMO_SERVICE, service_calls

BURST = 70
#: Generous: an attempt takes milliseconds, a burst's slowest a few seconds on a loaded machine.
ATTEMPT_TIMEOUT_SECONDS = 60
#: Generous: a burst takes seconds; only a hang comes near this.
BURST_TIMEOUT_SECONDS = 240


@pytest.fixture(scope="module")
def emulator() -> Iterator[LocalBreaker]:
    """The fast settings with a generous attempt timeout and without the fleet's failed-attempts
    rule. This module tests the emulator, not timeouts or that rule (test_workflow does): with the
    fast settings' 1 s, a burst of 70 parses on a loaded two-core machine (CI runs two test workers)
    timed out all three attempts of one call, which then failed and opened the circuit."""
    overrides = {
        "circuit-breaker": {
            **FAST_CONTEXT["circuit-breaker"],
            "serviceTimeoutSeconds": ATTEMPT_TIMEOUT_SECONDS,
            "failedAttemptsThreshold": 0,
        }
    }
    with LocalBreaker(context_overrides=overrides) as running:
        yield running


def sfn_client(local: LocalBreaker) -> Any:
    """A Step Functions client with a connection for every caller of a burst."""
    config = Config(
        inject_host_prefix=False,
        max_pool_connections=BURST + 5,
        read_timeout=BURST_TIMEOUT_SECONDS,
        retries={"mode": "standard", "total_max_attempts": 1},
    )
    return local.session.client("stepfunctions", endpoint_url=local.endpoint_url, config=config)


def burst(local: LocalBreaker, callers: int = BURST) -> list[dict[str, Any]]:
    """``callers`` StartSyncExecution calls released at the same instant, caller i sending ``n: i``."""
    sfn = sfn_client(local)
    start = threading.Barrier(callers)

    def call(i: int) -> dict[str, Any]:
        body = json.dumps({"ServiceName": DEMO_SERVICE, "Payload": {"mode": "ok", "n": i}})
        start.wait()
        response: dict[str, Any] = sfn.start_sync_execution(stateMachineArn=local.stack.state_machine_arn, input=body)
        return response

    with ThreadPoolExecutor(max_workers=callers) as pool:
        futures = [pool.submit(call, i) for i in range(callers)]
        return [future.result(timeout=BURST_TIMEOUT_SECONDS) for future in futures]


def assert_each_execution_has_its_own_run(local: LocalBreaker, responses: list[dict[str, Any]]) -> int:
    """Every execution succeeded with its own input, service calls and output; returns how many
    service calls the histories hold (more than one per execution when an attempt timed out on a
    busy machine and was retried, as the workflow should)."""
    sfn = local.boto3_client("stepfunctions")
    invocations = 0
    for i, response in enumerate(responses):
        assert response["status"] == "SUCCEEDED", response
        assert json.loads(response["output"])["echo"] == {"mode": "ok", "n": i}
        events = sfn.get_execution_history(executionArn=response["executionArn"], maxResults=1000)["events"]
        started = json.loads(events[0]["executionStartedEventDetails"]["input"])
        scheduled = [e["taskScheduledEventDetails"] for e in events if e["type"] == "TaskScheduled"]
        invoked = [json.loads(d["parameters"])["Payload"] for d in scheduled if d["resourceType"] == "lambda"]
        succeeded = json.loads(events[-1]["executionSucceededEventDetails"]["output"])
        assert started["Payload"]["n"] == i
        assert invoked and all(payload["n"] == i for payload in invoked)
        assert succeeded["echo"]["n"] == i
        invocations += len(invoked)
    return invocations


# --------------------------------------------------------------------------- bursts


@pytest.mark.parametrize("parse_cache", [True, False], ids=["one shared program", "a parse per execution"])
def test_a_burst_of_concurrent_calls_all_finish_each_with_its_own_result(
    parse_cache: bool, local: LocalBreaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GIVEN 70 callers at once (without the parse cache, as moto does: 70 parses at once)
    THEN every call ends, succeeds, and its history and output are its own."""
    interpreter = local.runtime.interpreter
    monkeypatch.setattr(interpreter, "speedups", replace(interpreter.speedups, parse_cache=parse_cache))
    calls_before, parses_before, crashes_before = service_calls(local), interpreter.parses, interpreter.crashes

    responses = burst(local)

    invocations = assert_each_execution_has_its_own_run(local, responses)
    # Each succeeded execution called the service; a timed-out attempt's call may land a little later.
    assert BURST <= service_calls(local) - calls_before <= invocations
    assert interpreter.parses - parses_before == (BURST if not parse_cache else 1 if parses_before == 0 else 0)
    assert interpreter.crashes == crashes_before


def test_the_shared_program_keeps_nothing_of_the_executions_that_ran_it(local: LocalBreaker) -> None:
    """GIVEN the one parsed program every execution runs
    WHEN a burst runs it, then a failure opens the circuit and calls fail fast
    THEN no component of it changed, and the definition was never parsed again."""
    sfn = local.boto3_client("stepfunctions")
    definition = sfn.describe_state_machine(stateMachineArn=local.stack.state_machine_arn)["definition"]
    interpreter = local.runtime.interpreter
    program = interpreter.program_for(definition)
    before = fingerprint(program)
    parses = interpreter.parses

    assert_each_execution_has_its_own_run(local, burst(local, callers=20))
    client = local.client()
    with pytest.raises(ServiceCallError):
        client.call(DEMO_SERVICE, {"mode": "fail"})
    local.runtime.settle()
    for _ in range(3):
        with pytest.raises(Exception, match="Circuit open"):
            client.call(DEMO_SERVICE, {"mode": "ok"})

    assert interpreter.program_for(definition) is program
    assert interpreter.parses == parses
    assert fingerprint(program) == before


def test_each_definition_parse_has_its_own_scope_stack(local: LocalBreaker) -> None:
    """moto's Preprocessor keeps its query-language scopes in a class attribute, shared by every
    thread that parses: a scope another thread has open leaks into this thread's parse (here a
    JSONata scope, which moto refuses to 'downgrade' to JSONPath), and one another thread closes
    under this one is the IndexError that hung executions. Each parse now has its own stack."""
    from moto.stepfunctions.parser.asl.component.common.query_language import QueryLanguage, QueryLanguageMode
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor

    definition = local.boto3_client("stepfunctions").describe_state_machine(
        stateMachineArn=local.stack.state_machine_arn
    )["definition"]
    shared = Preprocessor.__dict__["_query_language_per_scope"]
    shared.append(QueryLanguage(query_language_mode=QueryLanguageMode.JSONata))  # another thread, mid-parse
    try:
        program, _ = AmazonStateLanguageParser.parse(definition)
    finally:
        shared.pop()

    assert program.query_language.query_language_mode == QueryLanguageMode.JSONPath
    assert Preprocessor()._query_language_per_scope is not Preprocessor()._query_language_per_scope


# --------------------------------------------------------------------------- failures end executions


def run_in_thread(function: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = function()
        except Exception as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_an_execution_whose_interpreter_fails_before_it_starts_ends_failed_at_once(
    local: LocalBreaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GIVEN the parse fails as moto's shared scope stack made it fail (IndexError)
    THEN the execution ends FAILED with a clear error, and the synchronous call returns it
    (it used to wait for the Express limit, then fail with an empty error name)."""

    def broken_parse(definition: str) -> Any:
        raise IndexError("list index out of range")

    monkeypatch.setattr(local.runtime.interpreter, "program_for", broken_parse)
    client = BreakerClient(session=local.session, endpoint_url=local.endpoint_url)
    thread, outcome = run_in_thread(lambda: client.call(DEMO_SERVICE, {"mode": "ok"}))
    thread.join(timeout=60)

    assert not thread.is_alive(), "the call did not return"
    error = outcome["error"]
    assert isinstance(error, ServiceCallError)
    assert error.error == INTERPRETER_FAILED
    assert "interpreter failed: IndexError: list index out of range" in str(error.cause)
    described = local.boto3_client("stepfunctions").describe_execution(executionArn=error.execution_arn)
    assert (described["status"], described["error"]) == ("FAILED", INTERPRETER_FAILED)


def test_an_execution_whose_program_fails_while_running_ends_failed_in_its_history(
    local: LocalBreaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Broken:
        def eval(self, env: Any) -> None:
            raise RuntimeError("the interpreter broke")

    monkeypatch.setattr(local.runtime.interpreter, "program_for", lambda definition: Broken())
    client = BreakerClient(session=local.session, endpoint_url=local.endpoint_url)
    thread, outcome = run_in_thread(lambda: client.call(DEMO_SERVICE, {"mode": "ok"}))
    thread.join(timeout=60)

    assert not thread.is_alive(), "the call did not return"
    error = outcome["error"]
    assert error.error == INTERPRETER_FAILED
    events = local.boto3_client("stepfunctions").get_execution_history(
        executionArn=error.execution_arn, maxResults=1000
    )["events"]
    assert [e["type"] for e in events] == ["ExecutionStarted", "ExecutionFailed"]
    assert "RuntimeError: the interpreter broke" in events[-1]["executionFailedEventDetails"]["cause"]


def test_stopping_an_execution_that_has_not_started_aborts_it_when_it_starts(
    local: LocalBreaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GIVEN an execution still parsing its definition (no environment yet)
    WHEN StopExecution arrives (the emulator's own at the Express limit, or a user's)
    THEN the stop is accepted, the program never runs, and the execution ends ABORTED."""
    interpreter = local.runtime.interpreter
    parse = interpreter.program_for
    parsing, release = threading.Event(), threading.Event()

    def slow_parse(definition: str) -> Any:
        parsing.set()
        release.wait(timeout=60)
        return parse(definition)

    monkeypatch.setattr(interpreter, "program_for", slow_parse)
    sfn = local.boto3_client("stepfunctions")
    calls_before = service_calls(local)
    arn = sfn.start_execution(
        stateMachineArn=local.stack.state_machine_arn, input=json.dumps({"ServiceName": DEMO_SERVICE})
    )["executionArn"]
    assert parsing.wait(timeout=60)

    sfn.stop_execution(executionArn=arn, error="Stopped", cause="by the test")
    release.set()

    assert interpreter.wait_for_end(arn, timeout=60)
    described = sfn.describe_execution(executionArn=arn)
    assert described["status"] == "ABORTED"
    events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    assert [e["type"] for e in events] == ["ExecutionStarted", "ExecutionAborted"]
    assert service_calls(local) == calls_before


def test_an_execution_past_the_express_limit_is_stopped_and_reported_timed_out(
    local: LocalBreaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The emulator's own StopExecution at the Express limit (here 1 s instead of 5 minutes):
    the call returns TIMED_OUT, and the execution ends, not left running."""
    middleware = local._middleware
    assert middleware is not None
    monkeypatch.setattr(middleware, "limit_seconds", 1.0)
    client = local.client(remember_open_seconds=0)
    sfn = local.boto3_client("stepfunctions")

    with pytest.raises(ServiceCallError) as caught:  # 3 attempts of 1 s each: past the limit
        client.call(DEMO_SERVICE, {"mode": "slow", "delayMs": 1500})

    assert caught.value.timed_out
    arn = caught.value.execution_arn
    assert arn is not None
    assert local.runtime.interpreter.wait_for_end(arn, timeout=60)
    # ABORTED; or FAILED when the attempt in flight failed as the stop arrived (moto lets that
    # failure overwrite the stop). Never left RUNNING.
    assert sfn.describe_execution(executionArn=arn)["status"] in ("ABORTED", "FAILED")
