"""Read sharding (``readShards``, docs/scale.md): a call reads one of the circuit's K items at
random, every writer writes the base item, and StreamMirror keeps the K-1 read shards in step.

The semantics and operator tests (tests/test_workflow_semantics.py, tests/test_workflow.py) run
on the sharded assembly too; here: the keys, the shard each call reads, and operators (a plain
write, the CLI's store) forcing a sharded circuit open and closed.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from bench.scale.throttling import ThrottledItems
from infra.workflow import circuit_keys
from sfn_breaker.core import model
from sfn_breaker.core.store import CircuitStore
from sfn_breaker.local.assembly import Assembly
from tests.conftest import READ_SHARDS
from tests.harness import Breaker, Execution, ScriptedService
from tests.sharding import breaker_on, shards_in_step

KEYS = model.shard_keys("payment", READ_SHARDS)


def test_the_keys_of_a_circuit() -> None:
    assert model.shard_keys("payment", 1) == ["payment"]
    assert model.shard_keys("payment", 3) == ["payment", "payment#1", "payment#2"]
    assert circuit_keys(1, service="payment") == ["payment", "payment"]  # K = 1: always the item of today
    assert circuit_keys(3, service="payment") == ["payment", "payment#1", "payment#2", "payment"]
    assert model.is_shard_key("payment#1") and not model.is_shard_key("payment")


def test_a_shard_holds_only_what_the_workflow_reads() -> None:
    base = {"ServiceName": "payment", "ExpiryTimeStamp": 5, "OpenUntil": "x", "Failures": [1], "Version": 3}
    assert model.shard_view(base) == {"OpenUntil": "x"}
    assert model.shard_view({"ServiceName": "payment", "FailedAttempts": 2}) is None  # closed: no shard
    assert model.shard_view(None) is None


@pytest.fixture
def draws(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """States.MathRandom made deterministic: every draw of the shard read returns 0, 1, 2, ... in
    turn (wrapping over the range it is given); the draws are recorded."""
    from moto.stepfunctions.parser.asl.component.intrinsic.function.statesfunction.math_operations import (
        math_random,
    )

    counter = itertools.count()
    drawn: list[tuple[int, int]] = []

    class Cycling:
        def __init__(self, seed: Any = None) -> None:
            pass

        def randint(self, start: int, end: int) -> int:
            drawn.append((start, end))
            return start + next(counter) % (end - start + 1)

    monkeypatch.setattr(math_random.random, "Random", Cycling)
    return drawn


@pytest.fixture
def sharded(assemblies: dict[str, Assembly], service: ScriptedService) -> Iterator[Breaker]:
    with breaker_on(assemblies["fast_sharded"], service, READ_SHARDS) as deployed:
        yield deployed


def key_read(execution: Execution) -> str:
    reads = [
        json.loads(e["taskScheduledEventDetails"]["parameters"])["Key"]["ServiceName"]["S"]
        for e in execution.history
        if e["type"] == "TaskScheduled" and e["taskScheduledEventDetails"]["resource"] == "getItem"
    ]
    assert len(reads) == 1
    return str(reads[0])


def test_each_call_reads_the_shard_drawn_for_it(sharded: Breaker, draws: list[tuple[int, int]]) -> None:
    results = [sharded.call({}) for _ in range(READ_SHARDS + 1)]

    assert [key_read(r) for r in results] == [*KEYS, "payment"]  # the draws 0..K: every shard, then the base
    assert set(draws) == {(0, READ_SHARDS)}
    assert all(r.status == "SUCCEEDED" for r in results)
    assert sharded.items() == [] and sharded.shards() == {}  # the success path writes nothing


def test_an_operator_forcing_a_sharded_circuit_writes_one_item(sharded: Breaker, draws: list[tuple[int, int]]) -> None:
    # GIVEN an operator's plain write of the base item only, as from the console
    sharded.operator_writes({"ServiceName": "payment", "Forced": "OPEN", "Reason": "maintenance"})
    shards_in_step(sharded, READ_SHARDS)
    assert set(sharded.shards()) == set(KEYS[1:])

    # WHEN calls read every shard in turn, THEN every one fails fast
    held = [sharded.call({}) for _ in range(READ_SHARDS + 1)]
    assert [key_read(r) for r in held] == [*KEYS, "payment"]
    assert {r.error for r in held} == {"CircuitOpen"} and sharded.service_calls() == 0

    # WHEN the operator deletes the base item, THEN the shards go too and every shard lets calls through
    sharded.table.delete_item(Key={"ServiceName": "payment"})
    sharded.runtime.settle()
    assert sharded.shards() == {}
    closed = [sharded.call({}) for _ in range(READ_SHARDS + 1)]
    assert {r.status for r in closed} == {"SUCCEEDED"} and sharded.service_calls() == READ_SHARDS + 1


def test_the_clis_store_forcing_a_sharded_circuit(sharded: Breaker, draws: list[tuple[int, int]]) -> None:
    store = CircuitStore(sharded.table_name, dynamodb_resource=sharded.session.resource("dynamodb"))

    store.force_open("payment", until=int(time.time()) + 600, now=time.time(), reason="deploy")
    shards_in_step(sharded, READ_SHARDS)
    opened = [sharded.call({}) for _ in range(READ_SHARDS + 1)]
    assert {r.error for r in opened} == {"CircuitOpen"} and sharded.service_calls() == 0
    assert [i["ServiceName"] for i in store.scan()] == ["payment"]  # listings show circuits, not shards

    store.force_closed("payment", now=time.time())
    shards_in_step(sharded, READ_SHARDS)
    sharded.service.behave(then="fail")
    failed = [sharded.call({}) for _ in range(READ_SHARDS + 1)]
    assert {r.error for r in failed} == {"ServiceError"}  # forced closed on every shard: always called
    assert sharded.item() is not None and sharded.item()["Forced"] == "CLOSED"  # type: ignore[index]

    store.close("payment")
    sharded.runtime.settle()
    assert sharded.shards() == {}


def test_an_outage_opens_every_shard_and_a_probe_closes_them(sharded: Breaker, draws: list[tuple[int, int]]) -> None:
    sharded.service.behave(then="fail")
    assert sharded.call({}).error == "ServiceError"  # fails every attempt: RecordFailure opens the circuit
    shards_in_step(sharded, READ_SHARDS)
    assert len(sharded.shards()) == READ_SHARDS - 1

    calls = sharded.service_calls()
    opened = [sharded.call({}) for _ in range(READ_SHARDS + 1)]
    assert {r.error for r in opened} == {"CircuitOpen"} and sharded.service_calls() == calls

    # The open period ends (an operator moves the expiry into the past): half-open on every shard.
    item = sharded.item()
    assert item is not None
    sharded.operator_writes({**item, "ExpiryTimeStamp": int(time.time()) - 5})
    shards_in_step(sharded, READ_SHARDS)
    sharded.service.behave(then="ok")
    probe = sharded.call({})
    assert probe.status == "SUCCEEDED" and "CloseCircuit" in probe.states()
    sharded.runtime.settle()
    assert sharded.item() is None and sharded.shards() == {}


# --------------------------------------------------------------------------- the per-item ceiling


@pytest.mark.parametrize(("variant", "read_shards"), [("fast", 1), ("fast_sharded", READ_SHARDS)])
def test_a_per_item_read_limit_caps_reads_at_k_times_the_limit(
    assemblies: dict[str, Assembly],
    service: ScriptedService,
    draws: list[tuple[int, int]],
    variant: str,
    read_shards: int,
) -> None:
    """Each item serves BURST reads and then throttles (a token bucket per key, its clock frozen):
    the circuit's reads served are BURST x K, as the model says, and every call still ends."""
    burst = 2
    keys = frozenset(model.shard_keys("payment", read_shards))
    calls = 2 * (READ_SHARDS + 1)
    with (
        breaker_on(assemblies[variant], service, read_shards) as deployed,
        ThrottledItems(keys, reads_per_second=burst, clock=lambda: 0.0).installed() as limit,
    ):
        results = [deployed.call({}) for _ in range(calls)]

    served, throttled = limit.reads()
    assert served == burst * read_shards  # the ceiling: K items, each its own limit
    assert {key: limit.served["get_item", key] for key in keys} == dict.fromkeys(keys, burst)
    assert throttled > 0 and len(results) == calls and {r.status for r in results} == {"SUCCEEDED"}  # policy: call
