"""The outage benchmark (``bench/outage``), run with tiny settings: its counts, never its timings.

Two callers; half a second healthy, one and a half down (failing at once), half a second
recovered; on the session's fast assembly (1 s timeout, no retry waits, 30 s open period). What
is checked is what the benchmark reports being true of the strategies' own code on the emulator.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from bench.outage.__main__ import benchmark
from bench.outage.base import Outcome
from bench.outage.settings import STRATEGIES, Settings
from sfn_breaker.local.assembly import Assembly

SETTINGS = Settings(callers=2, phases=(0.5, 1.5, 0.5), open_seconds=30, timeout_seconds=1, modes=("fail",))


@pytest.fixture(scope="module")
def result(fast_assembly: Assembly, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    out = tmp_path_factory.mktemp("bench-output")
    runs, counted, text = benchmark(SETTINGS, out, assembly=fast_assembly, progress=False)
    return SimpleNamespace(runs={r.strategy: r for r in runs}, counted=counted, text=text, out=out)


def test_every_strategy_ran_and_its_outcomes_add_up(result: SimpleNamespace) -> None:
    assert set(result.runs) == set(STRATEGIES)
    for run in result.runs.values():
        assert run.calls, run.strategy
        assert sum(run.count(o) for o in Outcome) == len(run.calls)
        # The service's own record of arrivals and the emulator's record of invocations agree.
        assert run.emulator_invocations == len(run.arrivals), run.strategy


def test_without_a_breaker_every_attempt_reaches_the_dead_service(result: SimpleNamespace) -> None:
    run = result.runs["no breaker"]
    assert run.reached_while_down > 0
    assert run.direct_attempts == len(run.arrivals) == run.emulator_invocations
    assert run.count(Outcome.FAST_FAIL) == 0


def test_the_breakers_executions_are_counted_from_the_emulator(result: SimpleNamespace) -> None:
    for name in ("reference design", "this project"):
        run = result.runs[name]
        assert run.executions is not None and 0 < run.executions <= len(run.calls)
    assert result.runs["Powertools"].executions is None


def test_the_reference_design_reads_the_table_on_every_call_and_its_open_circuit_stops_calls(
    result: SimpleNamespace,
) -> None:
    service = _service(result)
    counted = result.counted["reference design"]
    closed = counted["closed, first"]
    assert closed.outcome is Outcome.OK
    assert closed.operations.executions == 1
    assert closed.operations.lambda_invocations[service] == 1
    assert closed.operations.lambda_invocations["GetCircuitStatus"] == 1
    assert closed.operations.dynamodb == {"Query": 1}
    assert closed.operations.read_units == 1.0  # ConsistentRead, as its DynamoDBContext is configured
    for call in ("open, first", "open, next"):
        opened = counted[call]
        assert opened.outcome is Outcome.FAST_FAIL
        assert opened.operations.lambda_invocations[service] == 0
        assert opened.operations.lambda_invocations["GetCircuitStatus"] == 1
        assert opened.operations.dynamodb == {"Query": 1}


def test_this_projects_open_call_runs_no_lambda(result: SimpleNamespace) -> None:
    service = _service(result)
    counted = result.counted["this project"]
    closed = counted["closed, first"]
    assert closed.outcome is Outcome.OK
    assert closed.operations.breaker_lambda_invocations(service) == 0
    assert closed.operations.lambda_invocations[service] == 1
    assert closed.operations.dynamodb_writes == 0
    for call in ("open, first", "open, next"):
        opened = counted[call]
        assert opened.outcome is Outcome.FAST_FAIL
        assert sum(opened.operations.lambda_invocations.values()) == 0
        assert opened.operations.executions <= 1
        assert opened.operations.dynamodb_writes == 0


def test_powertools_reads_once_per_environment_and_then_uses_its_cache(result: SimpleNamespace) -> None:
    counted = result.counted["Powertools"]
    assert counted["closed, first"].operations.dynamodb == {"GetItem": 1}
    assert counted["closed, first"].operations.read_units == 0.5  # eventually consistent
    assert counted["closed, next"].operations.dynamodb == {}
    assert counted["open, first"].outcome is Outcome.FAST_FAIL
    assert counted["open, first"].operations.dynamodb == {"GetItem": 1}  # a fresh environment reads
    assert counted["open, next"].operations.dynamodb == {}
    assert sum(counted["open, first"].operations.lambda_invocations.values()) == 0


def test_no_breaker_has_no_open_call(result: SimpleNamespace) -> None:
    assert set(result.counted["no breaker"]) == {"closed, first", "closed, next"}


def test_the_table_the_numbers_and_the_chart_are_written(result: SimpleNamespace) -> None:
    out: Path = result.out
    text = (out / "outage.md").read_text()
    assert text == result.text
    for name in STRATEGIES:
        assert f"| {name} |" in text
    numbers = json.loads((out / "outage.json").read_text())
    assert {r["strategy"] for r in numbers["runs"]} == set(STRATEGIES)
    reached = {r["strategy"]: r["reached_while_down"] for r in numbers["runs"]}
    assert reached == {name: run.reached_while_down for name, run in result.runs.items()}
    assert (out / "outage.png").read_bytes().startswith(b"\x89PNG")


def _service(result: SimpleNamespace) -> str:
    counted = result.counted["no breaker"]["closed, first"]
    (service,) = counted.operations.lambda_invocations
    return str(service)
