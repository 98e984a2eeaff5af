"""The scale model (bench/scale/model.py): pure arithmetic from the documented AWS figures."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from bench.scale import model
from bench.scale.model import (
    AWS_LIMITS,
    EXPRESS,
    FAILING_ITEM_BYTES,
    LAMBDA,
    READS,
    WRITES,
    Load,
    evaluate,
    execution_seconds,
    shards_needed,
)
from sfn_breaker.core import model as item_format


def test_every_figure_has_a_source_and_its_words() -> None:
    for limit in AWS_LIMITS.values():
        assert limit.source.startswith(("https://docs.aws.amazon.com/", "https://github.com/awsdocs/")), limit.name
        assert limit.quote, limit.name
        assert "|" not in limit.quote  # printed inside a Markdown table


def test_item_size_follows_dynamodbs_rules() -> None:
    # Strings: name + UTF-8 bytes; numbers: name + 1 byte per two digits + 1; lists: 3 + 1 per element.
    assert model.attribute_bytes("LastCause", "é" * 10) == 9 + 20
    assert model.attribute_bytes("Opens", 12345) == 5 + 3 + 1
    assert model.attribute_bytes("Failures", [1796524243]) == 8 + 3 + 1 + 6


def test_a_failing_services_item_costs_three_write_units() -> None:
    # LastCause is kept up to MAX_CAUSE_CHARS characters: the item is over 2 KB, under 4 KB.
    assert item_format.MAX_CAUSE_CHARS == 2000
    assert 2048 < FAILING_ITEM_BYTES <= 3072
    assert model.write_units(FAILING_ITEM_BYTES) == 3
    assert model.read_units(FAILING_ITEM_BYTES, consistent=True) == 1
    # A cause of 4-byte characters is the UTF-8 worst case.
    assert model.write_units(model.item_bytes(model.failing_item(bytes_per_char=4))) == 10


def test_a_healthy_service_is_capped_by_its_circuit_items_reads() -> None:
    # 3,000 read units a partition, half a unit per eventually consistent read, one read per call.
    verdict = evaluate(Load(calls_per_second=10_000, latency_seconds=0.05, concurrency=10_000, lambda_concurrency=1e9))
    assert verdict.binding.limit == READS
    assert verdict.ceiling == 6000
    assert [c.limit for c in verdict.exceeded] == [READS]
    assert "storeFaultPolicy" in verdict.binding.what_a_caller_sees


def test_the_success_path_writes_nothing() -> None:
    assert math.isinf(evaluate(Load(calls_per_second=1)).of(WRITES).calls_per_second)


def test_read_shards_multiply_a_healthy_services_read_ceiling() -> None:
    one = evaluate(Load(calls_per_second=1, read_shards=1, concurrency=1e9, lambda_concurrency=1e9))
    eight = evaluate(Load(calls_per_second=1, read_shards=8, concurrency=1e9, lambda_concurrency=1e9))
    assert eight.ceiling / one.ceiling == 8
    assert eight.ceiling == 48_000
    # If States.MathRandom's end were inclusive, the base item would take 2/(K+1) of the reads.
    inclusive = evaluate(
        Load(calls_per_second=1, read_shards=8, base_share=2 / 9, concurrency=1e9, lambda_concurrency=1e9)
    )
    assert inclusive.ceiling == pytest.approx(27_000)


def test_a_failing_call_reads_the_base_item_consistently_so_shards_do_not_scale_its_reads() -> None:
    # Three eventually consistent reads (0.5 unit each) and RecordFailure's consistent read (1 unit).
    one = evaluate(Load(calls_per_second=1, failing=True, read_shards=1))
    assert one.of(READS).calls_per_second == pytest.approx(3000 / 2.5)
    # At K=8 the GetCircuitStatus reads spread, RecordFailure's read does not.
    eight = evaluate(Load(calls_per_second=1, failing=True, read_shards=8))
    assert eight.of(READS).calls_per_second == pytest.approx(3000 / (3 * 0.5 / 8 + 1))
    assert eight.of(READS).calls_per_second < 3000


def test_a_failing_service_writes_its_item_once_per_attempt_at_its_size() -> None:
    # Two CountFailedAttempt writes and RecordFailure's PutItem, 3 units each on the worst-case item.
    failing = Load(calls_per_second=1, failing=True, attempts=3, concurrency=1e9, lambda_concurrency=1e9)
    verdict = evaluate(failing)
    assert verdict.of(WRITES).calls_per_second == pytest.approx(1000 / 9)
    assert verdict.binding.limit == WRITES
    assert "RecordFailureFailed" in verdict.binding.what_a_caller_sees
    small = evaluate(replace(failing, item_bytes=300))
    assert small.of(WRITES).calls_per_second == pytest.approx(1000 / 3)


def test_a_500_ms_service_binds_on_express_concurrency_at_its_low_end() -> None:
    verdict = evaluate(Load(calls_per_second=1, latency_seconds=0.1))
    assert verdict.binding.limit == READS
    slower = evaluate(Load(calls_per_second=1, latency_seconds=0.5))
    assert slower.binding.limit == EXPRESS
    assert slower.ceiling == pytest.approx(1000 / 0.55)
    assert "StartSyncExecution" in slower.binding.what_a_caller_sees


def test_at_the_high_end_of_express_concurrency_lambda_binds_first() -> None:
    # 3,700 executions (the documented range's high end) outlast 1,000 Lambda executions.
    slower = evaluate(Load(calls_per_second=1, latency_seconds=0.5, concurrency=3700))
    assert slower.binding.limit == LAMBDA
    assert slower.ceiling == pytest.approx(2000)
    hang = evaluate(Load(calls_per_second=1, failing=True, concurrency=3700))
    assert hang.binding.limit == LAMBDA
    assert hang.ceiling == pytest.approx(1000 / (3 * 3 + 0.1))
    # What the caller sees there: the workflow counts it as the service failing.
    assert "Lambda.TooManyRequestsException" in hang.binding.what_a_caller_sees
    assert "opens the circuit" in hang.binding.what_a_caller_sees


def test_a_hanging_service_caps_callers_near_100_calls_per_1000_of_concurrency() -> None:
    # The example: one 10 s attempt, no retries.
    hang = Load(calls_per_second=500, timeout_seconds=10, attempts=1, failing=True, workflow_overhead_seconds=0)
    verdict = evaluate(hang)
    assert execution_seconds(hang) == 10
    assert verdict.of(EXPRESS).calls_per_second == 100
    # Its Lambda invocations hold 1,000 Lambda executions just as long, plus RecordFailure's.
    assert verdict.binding.limit == LAMBDA and verdict.ceiling == pytest.approx(1000 / 10.1)
    # A function whose own timeout is longer holds Lambda concurrency longer than the workflow waits.
    longer = evaluate(Load(calls_per_second=1, failing=True, hung_invocation_seconds=30, concurrency=1e9))
    assert longer.of(LAMBDA).calls_per_second == pytest.approx(1000 / (3 * 30 + 0.1))


def test_shards_needed_leaves_headroom() -> None:
    assert shards_needed(Load(calls_per_second=4000)) == 1
    assert shards_needed(Load(calls_per_second=5000)) == 2  # 6,000 * 0.8 = 4,800 < 5,000
    assert shards_needed(Load(calls_per_second=40_000)) == 9
    with pytest.raises(ValueError, match="no number of read shards"):
        shards_needed(Load(calls_per_second=5000, failing=True))
