"""The scale model (bench/scale/model.py): pure arithmetic from the documented AWS figures."""

from __future__ import annotations

import math

import pytest

from bench.scale.model import AWS_LIMITS, Load, evaluate, execution_seconds, shards_needed


def test_every_figure_has_a_documentation_page() -> None:
    for limit in AWS_LIMITS.values():
        assert limit.source.startswith("https://docs.aws.amazon.com/"), limit.name


def test_a_healthy_service_is_capped_by_its_circuit_items_reads() -> None:
    # 3,000 read units a partition, two eventually consistent reads per unit, one read per call.
    verdict = evaluate(Load(calls_per_second=10_000, latency_seconds=0.05, concurrency=10_000))
    assert verdict.binding.limit == "circuit item reads"
    assert verdict.ceiling == 6000
    assert [c.limit for c in verdict.exceeded] == ["circuit item reads"]
    assert "storeFaultPolicy" in verdict.binding.what_a_caller_sees


def test_the_success_path_writes_nothing() -> None:
    assert math.isinf(evaluate(Load(calls_per_second=1)).ceilings[1].calls_per_second)


def test_read_shards_multiply_the_read_ceiling() -> None:
    one = evaluate(Load(calls_per_second=1, read_shards=1, concurrency=1e9))
    eight = evaluate(Load(calls_per_second=1, read_shards=8, concurrency=1e9))
    assert eight.ceiling / one.ceiling == 8
    assert eight.ceiling == 48_000


def test_a_100_ms_service_binds_on_reads_a_500_ms_one_on_concurrency() -> None:
    # 1,000 executions of 0.15 s each: about 6,667 calls/s, just above the item's 6,000 reads.
    verdict = evaluate(Load(calls_per_second=1, latency_seconds=0.1))
    assert verdict.binding.limit == "circuit item reads"
    slower = evaluate(Load(calls_per_second=1, latency_seconds=0.5))
    assert slower.binding.limit == "Express concurrency"
    assert slower.ceiling == pytest.approx(1000 / 0.55)


def test_a_hanging_service_caps_callers_near_100_calls_per_1000_of_concurrency() -> None:
    # The example: one 10 s attempt, no retries.
    hang = Load(calls_per_second=500, timeout_seconds=10, attempts=1, failing=True, workflow_overhead_seconds=0)
    verdict = evaluate(hang)
    assert execution_seconds(hang) == 10
    assert verdict.binding.limit == "Express concurrency"
    assert verdict.ceiling == 100
    assert "StartSyncExecution" in verdict.binding.what_a_caller_sees


def test_a_failing_service_writes_the_item_once_per_attempt() -> None:
    # Three attempts: two CountFailedAttempt writes, then RecordFailure's write.
    failing = Load(calls_per_second=1, failing=True, attempts=3, concurrency=1e9)
    verdict = evaluate(failing)
    assert verdict.ceilings[1].calls_per_second == pytest.approx(1000 / 3)
    assert verdict.binding.limit == "circuit item writes"
    assert "RecordFailureFailed" in verdict.binding.what_a_caller_sees


def test_shards_needed_leaves_headroom() -> None:
    assert shards_needed(Load(calls_per_second=4000)) == 1
    assert shards_needed(Load(calls_per_second=5000)) == 2  # 6,000 * 0.8 = 4,800 < 5,000
    assert shards_needed(Load(calls_per_second=40_000)) == 9
