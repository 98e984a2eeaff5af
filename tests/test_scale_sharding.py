"""Read sharding (``readShards``, docs/scale.md): a call reads one of the circuit's K items at
random, every writer writes the base item, and StreamMirror keeps the K-1 read shards in step.

The semantics and operator tests (tests/test_workflow_semantics.py, tests/test_workflow.py) run
on the sharded assembly too; here: the keys, the shard each call reads, and operators (a plain
write, the CLI's store) forcing a sharded circuit open and closed.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from bench.scale.throttling import ThrottledItems
from infra.workflow import circuit_keys
from sfn_breaker.cli.app import EXIT_USAGE, app
from sfn_breaker.core import model
from sfn_breaker.core.store import CircuitStore
from sfn_breaker.errors import CircuitOpenError
from sfn_breaker.lambdas import stream_mirror
from sfn_breaker.local.assembly import Assembly
from sfn_breaker.local.breaker import LocalBreaker
from tests.conftest import READ_SHARDS
from tests.harness import Breaker, Execution, ScriptedService
from tests.local_fixtures import item, quiet_functions, reset_circuits
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


# --------------------------------------------------------------------------- keeping shards in step
#
# StreamMirror copies a change of the base item to the shards; it cannot repair a shard that is out
# of step while the base item does not change (a stream batch it failed on, a shard left from a
# higher readShards, shards that did not exist when an operator opened the circuit). The operators'
# tools repair and show that, and a deploy that changes readShards resyncs every shard.


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sharded-state")


@pytest.fixture(scope="module")
def local_sharded(assemblies: dict[str, Assembly], state_dir: Path) -> Iterator[LocalBreaker]:
    """The sharded breaker on the emulator, recorded in a state file as `breaker local up` records it."""
    with (
        quiet_functions(),
        LocalBreaker(assembly=assemblies["fast_sharded"], state_file=state_dir / "local.json") as up,
    ):
        yield up


@pytest.fixture
def local(local_sharded: LocalBreaker) -> LocalBreaker:
    reset_circuits(local_sharded)
    return local_sharded


def cli(state_dir: Path, *args: str) -> Result:
    return CliRunner().invoke(app, [*args, "--local"], env={"BREAKER_STATE_DIR": str(state_dir)})


def table_of(local: LocalBreaker) -> Any:
    return local.session.resource("dynamodb", endpoint_url=local.endpoint_url).Table(local.stack.outputs["TableName"])


def shards_of(local: LocalBreaker) -> dict[str, dict[str, Any]]:
    items = table_of(local).scan(ConsistentRead=True)["Items"]
    return {i["ServiceName"]: i for i in items if str(i["ServiceName"]).startswith("payment#")}


def outcomes(local: LocalBreaker, count: int = READ_SHARDS + 1) -> list[str]:
    """``count`` calls, each ``ok`` or the error it ended with (with ``draws``: shard 0, 1, ... in turn)."""
    client = local.client(remember_open_seconds=0)
    ended = []
    for _ in range(count):
        try:
            client.call("payment", {"mode": "ok"})
            ended.append("ok")
        except CircuitOpenError:
            ended.append("CircuitOpen")
    return ended


def every_shard_reads(local: LocalBreaker, attributes: dict[str, Any]) -> None:
    expected = {key: {**attributes, "ServiceName": key} for key in KEYS[1:]}
    assert shards_of(local) == expected


def test_a_stale_shard_with_no_base_item_is_shown_and_close_repairs_it(
    local: LocalBreaker, state_dir: Path, draws: list[tuple[int, int]]
) -> None:
    # GIVEN a shard left open with no base item (a stream batch StreamMirror failed on, or a shard
    # left from a higher readShards): no change of the base item will ever bring it in step
    table_of(local).put_item(Item={"ServiceName": "payment#3", "Forced": "OPEN"})
    local.runtime.settle()
    assert outcomes(local) == ["ok", "ok", "ok", "CircuitOpen", "ok"]  # the call that reads payment#3

    # THEN status and list name the shard, what it reads, and the command that repairs it
    shown = json.loads(cli(state_dir, "status", "payment", "--json").stdout)
    assert shown["state"] == "closed"
    assert shown["staleShards"] == [{"shard": "payment#3", "state": "forced open", "openUntil": None}]
    (listed,) = [c for c in json.loads(cli(state_dir, "list", "--json").stdout) if c["service"] == "payment"]
    assert listed["staleShards"] == shown["staleShards"]
    table = cli(state_dir, "status", "payment")
    assert table.exit_code == 0
    assert "read shard payment#3 reads forced open until further notice" in table.stderr
    assert "`breaker resync payment`" in table.stderr

    # WHEN the operator closes the circuit, THEN the shard goes too, though there was no base item
    closed = cli(state_dir, "close", "payment")
    assert closed.exit_code == 0, closed.output
    assert "read shards brought in step: payment#3 (it read forced open until further notice)" in closed.stdout
    assert shards_of(local) == {}
    assert outcomes(local) == ["ok"] * (READ_SHARDS + 1)
    assert json.loads(cli(state_dir, "status", "payment", "--json").stdout)["staleShards"] == []


def test_resync_opens_every_shard_of_a_circuit_held_open_before_it_was_sharded(
    local: LocalBreaker, state_dir: Path, draws: list[tuple[int, int]]
) -> None:
    # GIVEN an operator's circuit held open on the base item only: what readShards raised by a
    # deploy leaves when nothing resyncs (here the shards StreamMirror wrote are taken away)
    assert cli(state_dir, "open", "payment", "--indefinitely", "--reason", "incident").exit_code == 0
    every_shard_reads(local, {"Forced": "OPEN"})
    for key in KEYS[1:]:
        table_of(local).delete_item(Key={"ServiceName": key})
    local.runtime.settle()
    assert outcomes(local) == ["CircuitOpen", "ok", "ok", "ok", "CircuitOpen"]  # most calls reach the service
    warned = cli(state_dir, "status", "payment")
    assert warned.stderr.count("reads closed, but payment's circuit is forced open") == READ_SHARDS - 1

    # WHEN an operator runs `breaker resync`, THEN every shard reads open and the circuit is unchanged
    resynced = cli(state_dir, "resync")
    assert resynced.exit_code == 0, resynced.output
    assert "payment: read shards brought in step: payment#1 (it read closed), payment#2" in resynced.stdout
    every_shard_reads(local, {"Forced": "OPEN"})
    assert outcomes(local) == ["CircuitOpen"] * (READ_SHARDS + 1)
    assert item(local) is not None and item(local)["Reason"] == "incident"  # type: ignore[index]
    again = cli(state_dir, "resync", "payment")
    assert again.exit_code == 0 and again.stdout.strip() == "payment: read shards already in step."


def test_operators_writes_delete_shards_beyond_read_shards(local: LocalBreaker, state_dir: Path) -> None:
    # A shard from a higher readShards (payment#5 with 4) is read by no call, until readShards is
    # raised again: the operators' writes delete it.
    table_of(local).put_item(Item={"ServiceName": "payment#5", "Forced": "OPEN"})
    opened = cli(state_dir, "open", "payment", "--for", "10m")
    assert opened.exit_code == 0, opened.output
    assert "payment#5 deleted (beyond readShards)" in opened.stdout
    assert set(shards_of(local)) == set(KEYS[1:])
    assert cli(state_dir, "resync", "nosuch").exit_code == EXIT_USAGE  # an unknown service, as for close


def test_the_deploy_resync_brings_shards_in_step_with_the_setting(
    local: LocalBreaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a deploy that changes readShards runs (the custom resource on AWS; on the emulator,
    deploy_stack invokes StreamMirror itself): the emulator cannot redeploy a stack, so the table
    state a redeploy meets is made here and the entry point run on it."""
    assert any(i.event == model.RESYNC_READ_SHARDS_EVENT for i in local.runtime.calls_to("StreamMirror"))  # on deploy

    # GIVEN a circuit held open while it had one item (its shards never written), and a shard left
    # from a higher setting
    table = table_of(local)
    table.put_item(Item={"ServiceName": "payment", "Forced": "OPEN"})
    local.runtime.settle()
    for key in KEYS[1:]:
        table.delete_item(Key={"ServiceName": key})
    table.put_item(Item={"ServiceName": "payment#9", "Forced": "CLOSED"})
    local.runtime.settle()

    # WHEN the deploy's resync runs with readShards 4, THEN every shard reads open and #9 is gone
    answer = local.boto3_client("lambda").invoke(
        FunctionName=local.stack.physical_ids[stream_mirror_id(local)],
        Payload=json.dumps(model.RESYNC_READ_SHARDS_EVENT),
    )
    assert json.loads(answer["Payload"].read()) == {
        "Services": ["payment"],
        "Written": KEYS[1:],
        "Deleted": ["payment#9"],
    }
    every_shard_reads(local, {"Forced": "OPEN"})

    # WHEN readShards is lowered to 2, then turned off, THEN the shards no call reads are deleted
    monkeypatch.setenv("TABLE_NAME", local.stack.outputs["TableName"])
    assert stream_mirror.resync({"payment": 2})["Deleted"] == ["payment#2", "payment#3"]
    assert set(shards_of(local)) == {"payment#1"}
    assert stream_mirror.resync({})["Deleted"] == ["payment#1"]
    assert shards_of(local) == {}


def stream_mirror_id(local: LocalBreaker) -> str:
    (found,) = [
        logical_id
        for logical_id, resource in local.assembly.template["Resources"].items()  # type: ignore[union-attr]
        if resource["Type"] == "AWS::Lambda::Function"
        and resource["Properties"].get("Handler") == "sfn_breaker.lambdas.stream_mirror.handler"
    ]
    return found


def test_a_deploy_has_cloudformation_resync_and_hears_the_answer(local: LocalBreaker) -> None:
    """The custom resource's request: StreamMirror resyncs with the setting it carries and answers
    on the ResponseURL (a server on loopback here); a failure is answered FAILED, never left unanswered."""
    table = table_of(local)
    table.put_item(Item={"ServiceName": "payment", "Forced": "OPEN"})
    local.runtime.settle()
    for key in KEYS[1:]:
        table.delete_item(Key={"ServiceName": key})

    answers: list[dict[str, Any]] = []

    class Answer(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            answers.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    request = {
        "RequestType": "Update",
        "ResponseURL": f"http://127.0.0.1:{server.server_port}/answer",
        "StackId": "stack",
        "RequestId": "request",
        "LogicalResourceId": "ReadShardsInStep",
        "PhysicalResourceId": "read-shards-in-step",
        "ResourceProperties": {"ReadShards": json.dumps({"payment": READ_SHARDS})},
    }
    try:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("TABLE_NAME", local.stack.outputs["TableName"])
            stream_mirror.on_deploy(request)
            env.setenv("TABLE_NAME", "no-such-table")
            stream_mirror.on_deploy(request)
    finally:
        server.shutdown()
        thread.join(5)
    every_shard_reads(local, {"Forced": "OPEN"})
    assert [a["Status"] for a in answers] == ["SUCCESS", "FAILED"]
    assert answers[0]["Data"] == {"Written": READ_SHARDS - 1}
    assert answers[0]["PhysicalResourceId"] == "read-shards-in-step"
    assert "ResourceNotFoundException" in answers[1]["Reason"]
