"""The ``breaker`` CLI against the emulator: every command, its output and its exit code."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
import types
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from sfn_breaker.cli.app import (
    EXIT_CIRCUIT_OPEN,
    EXIT_ERROR,
    EXIT_SERVICE_FAILED,
    EXIT_USAGE,
    app,
)
from sfn_breaker.cli.formatting import format_duration, parse_duration
from sfn_breaker.local.assembly import Assembly
from sfn_breaker.local.breaker import LocalBreaker
from sfn_breaker.local.state import EmulatorState
from tests.local_fixtures import (
    NO_AWS_ENV,
    ascii_payload,
    chinese_payload,
    item,
    quiet_functions,
    reset_circuits,
    service_calls,
)

runner = CliRunner()


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("breaker-state")


@pytest.fixture(scope="module")
def local(fast_assembly: Assembly, state_dir: Path) -> Iterator[LocalBreaker]:
    """The emulator, recorded in a state file as `breaker local up` records it."""
    with quiet_functions(), LocalBreaker(assembly=fast_assembly, state_file=state_dir / "local.json") as running:
        yield running


@pytest.fixture(autouse=True)
def _closed(local: LocalBreaker) -> None:
    reset_circuits(local)


def breaker(*args: str, state_dir: Path, env: dict[str, str | None] | None = None, stdin: str | None = None) -> Result:
    """Run ``breaker ARGS`` with the emulator's state directory."""
    settings = {"BREAKER_STATE_DIR": str(state_dir), **(env or {})}
    return runner.invoke(app, list(args), env=settings, input=stdin)


@pytest.fixture
def cli(state_dir: Path) -> Any:
    """``breaker --local ...``-style calls: the command's args, with ``--local`` added."""

    def run(*args: str, stdin: str | None = None) -> Result:
        return breaker(*args, "--local", state_dir=state_dir, stdin=stdin)

    return run


def status_json(cli: Any) -> dict[str, Any]:
    result = cli("status", "payment", "--json")
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


# --------------------------------------------------------------------------- invoke


def test_invoke_prints_the_service_response(cli: Any) -> None:
    result = cli("invoke", "payment", "--payload", '{"mode": "ok", "amount": 5}')

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"status": "paid", "service": "payment", "echo": {"mode": "ok", "amount": 5}}


def test_invoke_reads_the_payload_from_a_file_or_stdin(cli: Any, tmp_path: Path) -> None:
    payload = tmp_path / "payload.json"
    payload.write_text('{"order": 1}')

    from_file = cli("invoke", "payment", "--payload-file", str(payload))
    from_stdin = cli("invoke", "payment", "-f", "-", stdin='{"order": 2}')

    assert json.loads(from_file.stdout)["echo"] == {"order": 1}
    assert json.loads(from_stdin.stdout)["echo"] == {"order": 2}


def test_invoke_of_a_failing_service_exits_4_with_error_and_cause(cli: Any, local: LocalBreaker) -> None:
    calls = service_calls(local)

    result = cli("invoke", "payment", "-p", '{"mode": "fail", "message": "card declined"}')

    assert result.exit_code == EXIT_SERVICE_FAILED
    assert result.stdout == ""
    assert result.stderr == "error: PaymentFailed\ncause: card declined\n"
    assert service_calls(local) == calls + 3


def test_invoke_on_an_open_circuit_exits_3_and_does_not_call_the_service(cli: Any, local: LocalBreaker) -> None:
    cli("invoke", "payment", "-p", '{"mode": "fail"}')
    local.runtime.settle()
    calls = service_calls(local)

    result = cli("invoke", "payment")

    assert result.exit_code == EXIT_CIRCUIT_OPEN
    lines = result.stderr.splitlines()
    assert lines[0] == "error: CircuitOpen"
    assert lines[1].startswith("cause: Circuit open for service payment until ")
    assert service_calls(local) == calls


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--payload", "{not json"], "error: --payload is not valid JSON: "),
        (["--payload", "{}", "--payload-file", "x.json"], "error: give --payload or --payload-file, not both"),
        (["--payload-file", "/nonexistent/payload.json"], "error: cannot read /nonexistent/payload.json"),
    ],
)
def test_invoke_with_a_bad_payload_exits_2_with_one_line(
    cli: Any, local: LocalBreaker, args: list[str], message: str
) -> None:
    executions = local.sync_executions

    result = cli("invoke", "payment", *args)

    assert result.exit_code == EXIT_USAGE
    assert result.stderr.startswith(message)
    assert len(result.stderr.splitlines()) == 1
    assert "Traceback" not in result.output
    assert local.sync_executions == executions


@pytest.mark.parametrize("payload", ["[1, 2]", "[]", '"text"', "3", "null"])
def test_invoke_with_a_payload_that_is_not_an_object_exits_2_and_never_calls(
    cli: Any, local: LocalBreaker, payload: str
) -> None:
    executions, calls = local.sync_executions, service_calls(local)

    result = cli("invoke", "payment", "-p", payload)

    if payload == "null":  # JSON null: no payload, the service gets {}
        assert result.exit_code == 0, result.output
        return
    assert result.exit_code == EXIT_USAGE
    assert result.stderr.startswith('error: InvalidInput: "Payload" must be a JSON object')
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.output
    assert (local.sync_executions, service_calls(local)) == (executions, calls)
    assert item(local) is None  # the circuit stays closed for everyone


def test_invoke_with_a_payload_over_256_kib_is_refused_as_aws_does_and_exits_2(
    cli: Any, local: LocalBreaker, tmp_path: Path
) -> None:
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"blob": "x" * 300_000}))
    executions, calls = local.sync_executions, service_calls(local)

    result = cli("invoke", "payment", "-f", str(big))

    assert result.exit_code == EXIT_USAGE  # a bad request, not 4 "the service failed"
    assert result.stderr == (
        "error: ValidationException: 1 validation error detected: Value at 'input' failed to satisfy constraint: "
        "Member must have length less than or equal to 262144\n"
    )
    assert (local.sync_executions, service_calls(local)) == (executions, calls)
    assert item(local) is None


def test_invoke_with_a_chinese_payload_of_200_kb_in_utf8_round_trips(
    cli: Any, local: LocalBreaker, tmp_path: Path
) -> None:
    payload = chinese_payload(200_000)
    big = tmp_path / "chinese.json"
    big.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")

    result = cli("invoke", "payment", "-f", str(big))

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["echo"] == payload


def test_invoke_with_a_request_too_large_for_the_breakers_states_exits_2_and_says_so(
    cli: Any, local: LocalBreaker, tmp_path: Path
) -> None:
    big = tmp_path / "big.json"
    big.write_text(json.dumps(ascii_payload(262_000)))
    calls = service_calls(local)

    result = cli("invoke", "payment", "-f", str(big))

    assert result.exit_code == EXIT_USAGE  # a bad request, not 4 "the service failed"
    assert result.stderr.startswith("error: States.DataLimitExceeded: The request to service payment is too large")
    assert "The service was not called" in result.stderr and len(result.stderr.splitlines()) == 1
    assert service_calls(local) == calls and item(local) is None


def test_invoke_of_an_unknown_service_exits_2_and_names_the_registered_ones(cli: Any) -> None:
    result = cli("invoke", "refunds")

    assert result.exit_code == EXIT_USAGE
    assert result.stderr == (
        "error: UnknownService: No service named refunds is registered with this circuit breaker. "
        "Registered services: payment.\n"
    )


# --------------------------------------------------------------------------- status and list


def test_list_shows_every_registered_circuit(cli: Any) -> None:
    table = cli("list")
    as_json = cli("list", "--json")

    assert table.exit_code == 0, table.output
    assert "payment" in table.stdout and "closed" in table.stdout
    assert json.loads(as_json.stdout) == [
        {
            "service": "payment",
            "state": "closed",
            "openUntil": None,
            "lastError": None,
            "lastCause": None,
            "lastFailureAt": None,
            "reason": None,
            "problem": None,
            "staleShards": [],  # read shards that disagree with the circuit: none unsharded
        }
    ]


def test_status_shows_an_open_circuit_with_its_last_failure(cli: Any, local: LocalBreaker) -> None:
    cli("invoke", "payment", "-p", '{"mode": "fail", "message": "card declined"}')
    local.runtime.settle()
    expiry = int(item(local)["ExpiryTimeStamp"])  # type: ignore[index]

    table = cli("status")
    one = status_json(cli)

    assert table.exit_code == 0, table.output
    for text in ("payment", "open", "PaymentFailed"):  # the table's width is the terminal's
        assert text in table.stdout
    assert one["state"] == "open"
    assert one["openUntil"] == datetime.fromtimestamp(expiry, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert one["lastError"] == "PaymentFailed"
    assert json.loads(one["lastCause"])["errorMessage"] == "card declined"
    assert json.loads(cli("status", "--json").stdout) == [one]


def test_status_shows_the_reason_an_operator_gave(cli: Any) -> None:
    cli("open", "payment", "--for", "10m", "--reason", "database maintenance")

    table = cli("status")
    one = status_json(cli)

    assert "maintenance" in table.stdout and "Reason" in table.stdout
    assert one["reason"] == "database maintenance"
    assert json.loads(cli("list", "--json").stdout)[0]["reason"] == "database maintenance"


@pytest.mark.parametrize("columns", ["100", "80", "60"])
def test_the_status_table_never_breaks_a_word(local: LocalBreaker, state_dir: Path, columns: str) -> None:
    breaker("invoke", "payment", "-p", '{"mode": "fail", "message": "card declined"}', "--local", state_dir=state_dir)
    local.runtime.settle()

    result = breaker("status", "--local", state_dir=state_dir, env={"COLUMNS": columns})

    assert result.exit_code == 0, result.output
    words = result.stdout.split()
    assert words.count("PaymentFailed") == 1 and "PaymentFailed:" in words  # last failure, and the cause
    assert "declined" in words


def test_a_stored_cause_has_no_frames_of_the_emulator(cli: Any, local: LocalBreaker) -> None:
    cli("invoke", "payment", "-p", '{"mode": "fail", "message": "card declined"}')
    local.runtime.settle()

    cause = json.loads(status_json(cli)["lastCause"])

    assert (cause["errorType"], cause["errorMessage"]) == ("PaymentFailed", "card declined")
    assert not [frame for frame in cause.get("stackTrace", []) if "sfn_breaker/local" in frame]
    assert any("payment" in frame for frame in cause["stackTrace"])  # the function's own frames, as on AWS


def test_status_of_an_unknown_service_exits_2(cli: Any) -> None:
    result = cli("status", "refunds")

    assert result.exit_code == EXIT_USAGE
    assert "No service named refunds" in result.stderr


def test_status_shows_a_half_open_circuit(cli: Any, local: LocalBreaker) -> None:
    table = local.session.resource("dynamodb", endpoint_url=local.endpoint_url).Table(local.stack.outputs["TableName"])
    table.put_item(Item={"ServiceName": "payment", "ExpiryTimeStamp": int(time.time()) - 5})
    local.runtime.settle()

    result = cli("status")

    assert result.exit_code == 0, result.output
    assert "half-open" in result.stdout
    assert status_json(cli)["state"] == "half-open"


def test_a_fast_fail_on_an_unreadable_circuit_exits_3(monkeypatch: pytest.MonkeyPatch, cli: Any) -> None:
    from sfn_breaker.cli import calls as cli_module
    from sfn_breaker.client import CircuitStoreUnavailableError

    class Unreadable:
        def call(self, service: str, payload: Any) -> Any:
            raise CircuitStoreUnavailableError(service, cause="The circuit of service payment could not be read")

    monkeypatch.setattr(cli_module, "make_client", lambda stack_name, local: Unreadable())

    result = cli("invoke", "payment")

    assert result.exit_code == EXIT_CIRCUIT_OPEN
    assert result.stderr == "error: CircuitStoreUnavailable\ncause: The circuit of service payment could not be read\n"


# --------------------------------------------------------------------------- open and close


def test_open_for_a_duration(cli: Any, local: LocalBreaker) -> None:
    before = time.time()

    result = cli("open", "payment", "--for", "10m", "--reason", "maintenance")

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("payment: closed -> forced open until ")
    assert "(in 10m)" in result.stdout
    assert result.stdout.rstrip().endswith("Calls fail fast with CircuitOpen until then.")
    stored = item(local)
    assert stored is not None and stored["Forced"] == "OPEN" and stored["Reason"] == "maintenance"
    assert math.ceil(before) + 600 <= int(stored["ExpiryTimeStamp"]) <= math.ceil(time.time()) + 600
    assert cli("invoke", "payment").exit_code == EXIT_CIRCUIT_OPEN


def test_open_until_a_time(cli: Any) -> None:
    until = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)

    result = cli("open", "payment", "--until", until.strftime("%Y-%m-%dT%H:%M:%S"))  # no zone: UTC

    assert result.exit_code == 0, result.output
    assert status_json(cli)["openUntil"] == until.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert status_json(cli)["state"] == "forced open"


def test_open_indefinitely_then_calls_fail_fast_until_further_notice(cli: Any, local: LocalBreaker) -> None:
    result = cli("open", "payment", "--indefinitely")
    calls = service_calls(local)
    invoked = cli("invoke", "payment")

    assert result.stdout == (
        "payment: closed -> forced open until further notice. "
        "Calls fail fast with CircuitOpen until `breaker close payment`.\n"
    )
    assert status_json(cli)["state"] == "forced open"
    assert status_json(cli)["openUntil"] is None
    assert invoked.exit_code == EXIT_CIRCUIT_OPEN
    assert "until further notice" in invoked.stderr
    assert service_calls(local) == calls


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "say how long the circuit stays open with exactly one of"),
        (["--for", "1m", "--indefinitely"], "(given: --for, --indefinitely)"),
        (["--for", "soon"], "is not a duration like 30s"),
        (["--for", "10"], "error: --for 10 has no unit: write 10s, 10m, 10h or 10d (or 1h30m).\n"),
        (["--until", "tomorrow"], "is not an ISO-8601 time"),
        (["--until", "2001-01-01T00:00:00Z"], "error: InvalidInput: until is in the past"),
    ],
)
def test_open_without_a_usable_duration_exits_2(cli: Any, local: LocalBreaker, args: list[str], message: str) -> None:
    result = cli("open", "payment", *args)

    assert result.exit_code == EXIT_USAGE
    assert message in result.stderr
    assert item(local) is None


def test_open_of_an_unknown_service_exits_2(cli: Any, local: LocalBreaker) -> None:
    result = cli("open", "refunds", "--for", "1m")

    assert result.exit_code == EXIT_USAGE
    assert "No service named refunds" in result.stderr
    assert item(local, "refunds") is None


def test_close_of_an_unknown_service_exits_2(cli: Any, local: LocalBreaker) -> None:
    result = cli("close", "refunds")

    assert result.exit_code == EXIT_USAGE
    assert result.stdout == ""
    assert result.stderr == (
        "error: UnknownService: No service named refunds is registered with this circuit breaker. "
        "Registered services: payment.\n"
    )


def test_close_still_closes_a_stored_circuit_of_a_service_no_longer_registered(cli: Any, local: LocalBreaker) -> None:
    table = local.session.resource("dynamodb", endpoint_url=local.endpoint_url).Table(local.stack.outputs["TableName"])
    table.put_item(Item={"ServiceName": "refunds", "ExpiryTimeStamp": int(time.time()) + 600})

    result = cli("close", "refunds")

    assert result.exit_code == 0, result.output
    assert result.stdout.rstrip().endswith("-> closed. Calls go through again.")
    assert item(local, "refunds") is None


def test_close_closes_an_open_circuit_and_says_so(cli: Any, local: LocalBreaker) -> None:
    cli("invoke", "payment", "-p", '{"mode": "fail"}')
    local.runtime.settle()

    closed = cli("close", "payment")
    again = cli("close", "payment")

    assert closed.exit_code == 0, closed.output
    assert closed.stdout.startswith("payment: open until ")
    assert closed.stdout.rstrip().endswith("-> closed. Calls go through again.")
    assert again.stdout == "payment: already closed; nothing changed.\n"
    assert item(local) is None
    assert cli("invoke", "payment").exit_code == 0


def test_close_force_keeps_calling_a_failing_service(cli: Any, local: LocalBreaker) -> None:
    forced = cli("close", "payment", "--force", "--reason", "false alarms")
    calls = service_calls(local)
    failures = [cli("invoke", "payment", "-p", '{"mode": "fail"}').exit_code for _ in range(2)]
    local.runtime.settle()

    assert forced.stdout == (
        "payment: closed -> forced closed. Every call goes through and failures never open the circuit, "
        "until `breaker close payment`.\n"
    )
    assert failures == [EXIT_SERVICE_FAILED, EXIT_SERVICE_FAILED]
    assert service_calls(local) == calls + 6
    assert status_json(cli)["state"] == "forced closed"
    assert cli("close", "payment").stdout == "payment: forced closed -> closed. Calls go through again.\n"


# --------------------------------------------------------------------------- finding the breaker


def test_without_credentials_the_cli_uses_the_running_emulator(state_dir: Path) -> None:
    invoked = breaker("invoke", "payment", "-p", '{"n": 1}', state_dir=state_dir, env=NO_AWS_ENV)
    listed = breaker("list", "--json", state_dir=state_dir, env=NO_AWS_ENV)

    assert invoked.exit_code == 0, invoked.output
    assert json.loads(invoked.stdout)["echo"] == {"n": 1}
    assert [c["service"] for c in json.loads(listed.stdout)] == ["payment"]


def test_a_client_made_without_arguments_finds_the_running_emulator(local: LocalBreaker, state_dir: Path) -> None:
    script = (
        "from sfn_breaker import BreakerClient; client = BreakerClient(); "
        "print(client.endpoint_url); print(client.call('payment', {'n': 2})['echo'])"
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update({key: value for key, value in NO_AWS_ENV.items() if value is not None})
    env["BREAKER_STATE_DIR"] = str(state_dir)

    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [local.endpoint_url, "{'n': 2}"]


def test_aws_endpoint_url_is_honoured(local: LocalBreaker, tmp_path: Path) -> None:
    env = {**NO_AWS_ENV, "AWS_ENDPOINT_URL": local.endpoint_url}

    result = breaker("invoke", "payment", state_dir=tmp_path, env=env)  # no state file there

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["status"] == "paid"


def test_a_stack_that_is_not_deployed_exits_1(cli: Any, local: LocalBreaker) -> None:
    result = cli("list", "--stack-name", "Elsewhere")

    assert result.exit_code == EXIT_ERROR
    # the advice for the emulator, which runs one stack: not `cdk deploy`
    assert result.stderr == (
        f"error: Stack Elsewhere is not deployed at {local.endpoint_url}, where the local emulator runs stack "
        f"{local.stack.name}: to run yours, `breaker local down`, then `breaker local up` in your CDK app's folder "
        '(its cdk.json), or `breaker local up --app "python3 app.py" --stack Elsewhere`.\n'
    )


def test_no_credentials_and_no_emulator_exits_1_with_what_to_do(tmp_path: Path) -> None:
    result = breaker("list", state_dir=tmp_path, env=NO_AWS_ENV)

    assert result.exit_code == EXIT_ERROR
    assert result.stderr == (
        "error: No AWS credentials found and the local emulator is not running: start it with "
        "`breaker local up`, or configure AWS credentials (aws configure, AWS_PROFILE, ...).\n"
    )


def test_an_emulator_that_is_gone_exits_1(tmp_path: Path) -> None:
    EmulatorState(pid=1, endpoint_url="http://127.0.0.1:9", region="us-east-1", stack_name="x", started_at=0).write(
        tmp_path / "local.json"
    )

    result = breaker("status", state_dir=tmp_path, env=NO_AWS_ENV)
    local_flag = breaker("status", "--local", state_dir=tmp_path)

    for outcome in (result, local_flag):
        assert outcome.exit_code == EXIT_ERROR
        assert "(pid 1, http://127.0.0.1:9) is not running: start it again with `breaker local up`." in outcome.stderr
        assert "Traceback" not in outcome.output


def test_an_endpoint_that_is_not_a_url_exits_1_in_one_line(tmp_path: Path) -> None:
    result = breaker("status", state_dir=tmp_path, env={**NO_AWS_ENV, "AWS_ENDPOINT_URL": "localhost:4566"})

    assert result.exit_code == EXIT_ERROR
    assert result.stderr.startswith("error: Invalid endpoint: localhost:4566: an endpoint is a URL such as ")
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.output


def test_a_payload_file_that_is_not_text_exits_2_in_one_line(cli: Any, tmp_path: Path) -> None:
    binary = tmp_path / "payload.bin"
    binary.write_bytes(b"\xff\xfe{")

    result = cli("invoke", "payment", "-f", str(binary))

    assert result.exit_code == EXIT_USAGE
    assert result.stderr == f"error: {binary} is not UTF-8 text: invalid start byte at byte 0\n"


def test_local_flag_without_an_emulator_exits_1(tmp_path: Path) -> None:
    result = breaker("list", "--local", state_dir=tmp_path)

    assert result.exit_code == EXIT_ERROR
    assert result.stderr == "error: The local emulator is not running: start it with `breaker local up`.\n"


# --------------------------------------------------------------------------- breaker local up / down


def test_local_up_runs_the_emulator_in_the_background_until_local_down(fast_assembly: Assembly, tmp_path: Path) -> None:
    def run(*args: str) -> Result:
        return breaker(*args, state_dir=tmp_path, env=NO_AWS_ENV)

    up = run("local", "up", "--assembly", str(fast_assembly.directory), "--timeout", "120")
    try:
        state = EmulatorState.read(tmp_path / "local.json")
        assert up.exit_code == 0, up.output
        assert state is not None and state.is_alive()
        assert up.stdout.startswith(f"Local emulator running at {state.endpoint_url} (pid {state.pid}).")
        assert f"export AWS_ENDPOINT_URL={state.endpoint_url}" in up.stdout

        again = run("local", "up", "--assembly", str(fast_assembly.directory))
        failed = run("invoke", "payment", "-p", '{"mode": "fail"}')
        status = run("status", "payment", "--json")

        assert again.exit_code == 0, again.output
        assert again.stdout.startswith(f"Local emulator already running stack {state.stack_name} (cloud assembly ")
        assert failed.exit_code == EXIT_SERVICE_FAILED
        assert json.loads(status.stdout)["state"] == "open"
    finally:
        down = run("local", "down")

    assert down.stdout == f"Local emulator at {state.endpoint_url} (pid {state.pid}) stopped.\n"
    assert not state.is_alive()
    assert not (tmp_path / "local.json").exists()
    assert run("local", "down").stdout == "No local emulator is running.\n"
    assert run("list").exit_code == EXIT_ERROR


def test_local_up_while_the_same_stack_runs_says_so_and_how_to_run_changed_code(
    local: LocalBreaker, fast_assembly: Assembly, state_dir: Path
) -> None:
    # GIVEN the module's emulator runs the fast assembly, recorded in state_dir
    # WHEN `breaker local up` asks for the same assembly
    result = breaker("local", "up", "--assembly", str(fast_assembly.directory), state_dir=state_dir, env=NO_AWS_ENV)

    # THEN it says what runs, and that changed code needs a restart; nothing else starts
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"Local emulator already running stack {local.stack.name} (cloud assembly "
        f"{fast_assembly.directory.resolve()}) at {local.endpoint_url} (pid {os.getpid()}). It runs the code it "
        "started with: for changed code, run `breaker local down`, then `breaker local up` again.\n"
    )


@pytest.mark.parametrize(
    ("args", "cdk_json", "asked"),
    [
        ([], {"app": "python3 app.py"}, "app `python3 app.py` in {folder}"),  # this folder's cdk.json app
        ([], None, "the demo app"),  # no cdk.json here
        (["--demo"], {"app": "python3 app.py"}, "the demo app"),
        (["--stack", "Orders"], {"app": "node app.js"}, "stack Orders of app `node app.js` in {folder}"),
        (["--app", "python3 other.py"], None, "app `python3 other.py` in {folder}"),
        (["--assembly", "{assembly}", "--stack", "Other"], None, "stack Other of cloud assembly {assembly}"),
    ],
    ids=["cdk.json", "no-cdk.json", "demo", "stack", "app", "other-stack"],
)
def test_local_up_of_something_else_while_an_emulator_runs_refuses_in_one_line(
    local: LocalBreaker,
    fast_assembly: Assembly,
    state_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    cdk_json: dict[str, str] | None,
    asked: str,
) -> None:
    # GIVEN the module's emulator runs the fast assembly, and a folder (with or without a cdk.json)
    if cdk_json is not None:
        (tmp_path / "cdk.json").write_text(json.dumps(cdk_json))
    monkeypatch.chdir(tmp_path)
    assembly = str(fast_assembly.directory.resolve())

    # WHEN `breaker local up` asks for another app, assembly or stack
    result = breaker("local", "up", *(a.format(assembly=assembly) for a in args), state_dir=state_dir, env=NO_AWS_ENV)

    # THEN it refuses in one line, naming what runs and what was asked, before any synth
    assert result.exit_code == EXIT_ERROR
    assert result.stderr == (
        f"error: the local emulator already runs stack {local.stack.name} (cloud assembly {assembly}) at "
        f"{local.endpoint_url} (pid {os.getpid()}), not {asked.format(folder=tmp_path.resolve(), assembly=assembly)}: "
        "run `breaker local down` first.\n"
    )
    assert not (tmp_path / "cdk.out").exists()


def test_local_up_in_a_folder_with_cdk_json_takes_settings_only_for_the_demo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "cdk.json").write_text(json.dumps({"app": "python3 app.py"}))
    monkeypatch.chdir(tmp_path)

    result = breaker("local", "up", "-s", "openDurationSeconds=3", state_dir=tmp_path / "state")

    assert result.exit_code == EXIT_USAGE
    assert result.stderr == (
        "error: --setting applies to the demo stack; set your own app's settings in its code or cdk.json "
        f"(or add --demo: {tmp_path.resolve()} has a cdk.json)\n"
    )


def test_local_up_refuses_a_malformed_setting(tmp_path: Path) -> None:
    result = breaker("local", "up", "--demo", "--setting", "openDurationSeconds", state_dir=tmp_path)

    assert result.exit_code == EXIT_USAGE
    assert "--setting takes NAME=VALUE" in result.stderr
    assert not (tmp_path / "local.json").exists()


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        (
            "bogus=1",
            "error: unknown setting 'bogus' for --setting; known: openDurationSeconds, serviceTimeoutSeconds, "
            "retryIntervalSeconds, backoffRate, maxAttempts, maxRetryDelaySeconds, failureThreshold, "
            "failureWindowSeconds, halfOpenProbes, openDurationGrowth, maxOpenDurationSeconds, storeFaultPolicy, "
            "successThreshold, slowStartSeconds, failedAttemptsThreshold, ignoredErrors, fallbackResponse, "
            "fallbackOnFailure, readShards\n",
        ),
        ("openDurationSeconds=0", "error: --setting: openDurationSeconds must be at least 1\n"),
        ("maxAttempts=many", "error: --setting: setting maxAttempts must be a whole number, not 'many'\n"),
    ],
)
def test_local_up_refuses_a_setting_the_breaker_does_not_take_in_one_line(
    tmp_path: Path, setting: str, message: str
) -> None:
    result = breaker("local", "up", "--demo", "-s", setting, state_dir=tmp_path)

    assert result.exit_code == EXIT_USAGE
    assert result.stderr == message
    assert "Traceback" not in result.output
    assert not (tmp_path / "local.json").exists()  # nothing was started


def test_local_up_on_a_port_in_use_says_why_in_one_line(
    local: LocalBreaker, fast_assembly: Assembly, tmp_path: Path
) -> None:
    port = local.endpoint_url.rsplit(":", 1)[1]  # held by the module's emulator

    result = breaker(
        "local", "up", "--port", port, "--assembly", str(fast_assembly.directory), state_dir=tmp_path, env=NO_AWS_ENV
    )

    assert result.exit_code == EXIT_ERROR
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith(
        f"error: the emulator exited with status 1 while starting: port {port} on 127.0.0.1 is in use by another program"
    )
    assert f"(its log: {tmp_path / 'local.log'})" in result.stderr
    assert "Traceback" not in result.output
    assert "Traceback" in (tmp_path / "local.log").read_text()  # the whole story is in the log


def test_local_up_tells_each_kind_of_client_what_it_needs() -> None:
    from sfn_breaker.cli.local import client_instructions

    text = client_instructions("http://127.0.0.1:4567", "us-east-1")

    for needed in (
        "AWS_ENDPOINT_URL=http://127.0.0.1:4567",
        "AWS_DEFAULT_REGION=us-east-1",
        "AWS_ACCESS_KEY_ID=local",
        "AWS_SECRET_ACCESS_KEY=local",
        "AWS_DISABLE_HOST_PREFIX_INJECTION=true",
        "inject_host_prefix=False",
        "disableHostPrefix: true",
    ):
        assert needed in text


# --------------------------------------------------------------------------- breaker demo


def test_demo_hands_its_options_to_run_demo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    received: list[dict[str, Any]] = []
    fake = types.ModuleType("sfn_breaker.demo")
    fake.run_demo = lambda **options: received.append(options)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sfn_breaker.demo", fake)

    default = breaker("demo", state_dir=tmp_path)
    chosen = breaker(
        "demo", "--outage", "fail", "--callers", "3", "--no-chart", "--local", "--out-dir", "out", state_dir=tmp_path
    )

    assert default.exit_code == chosen.exit_code == 0
    assert received == [{}, {"outage": "fail", "callers": 3, "chart": False, "where": "local", "out_dir": Path("out")}]


def test_an_error_of_the_machine_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def run_demo(**options: Any) -> None:
        raise PermissionError(13, "Permission denied", "demo-output/emulator.log")

    fake = types.ModuleType("sfn_breaker.demo")
    fake.run_demo = run_demo  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sfn_breaker.demo", fake)

    result = breaker("demo", state_dir=tmp_path)

    assert result.exit_code == EXIT_ERROR
    assert result.stderr == "error: [Errno 13] Permission denied: 'demo-output/emulator.log'\n"


def test_demo_refuses_a_place_it_does_not_know(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    received: list[dict[str, Any]] = []
    fake = types.ModuleType("sfn_breaker.demo")
    fake.run_demo = lambda **options: received.append(options)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sfn_breaker.demo", fake)

    result = breaker("demo", "--where", "nowhere", state_dir=tmp_path, env={"COLUMNS": "200"})

    assert result.exit_code == EXIT_USAGE
    assert "'nowhere' is not one of 'auto', 'local', 'aws'" in " ".join(result.stderr.split())
    assert "Traceback" not in result.output
    assert received == []

    contradiction = breaker("demo", "--local", "--where", "aws", state_dir=tmp_path)

    assert contradiction.exit_code == EXIT_USAGE
    assert contradiction.stderr == "error: --local and --where aws contradict each other; give one.\n"
    assert received == []


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (NO_AWS_ENV, "error: No AWS credentials found: `breaker demo --where aws` plays against the deployed stack."),
        (
            {
                **NO_AWS_ENV,
                "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
                "AWS_SECRET_ACCESS_KEY": "x",
                "AWS_DEFAULT_REGION": None,
            },
            "error: AWS credentials are configured but no region: set AWS_DEFAULT_REGION",
        ),
    ],
)
def test_demo_on_aws_without_credentials_or_region_says_so_in_one_line(
    tmp_path: Path, env: dict[str, str | None], message: str
) -> None:
    result = breaker("demo", "--where", "aws", state_dir=tmp_path, env={**env, "AWS_REGION": None})

    assert result.exit_code == EXIT_ERROR
    assert result.stderr.startswith(message)
    assert len(result.stderr.splitlines()) == 1
    assert "Traceback" not in result.output


def test_demo_help_shows_the_demos_defaults() -> None:
    import inspect

    from sfn_breaker.demo import DemoOptions, run_demo

    result = runner.invoke(app, ["demo", "--help"], env={"COLUMNS": "200", "TERMINAL_WIDTH": "200"})
    defaults = inspect.signature(run_demo).parameters
    options = DemoOptions()

    assert result.exit_code == 0
    for shown in (  # Typer puts a default the command does not pass on itself in parentheses
        f"[default: ({options.outage})]",
        f"[default: ({options.callers})]",
        f"[default: ({options.out_dir})]",
        f"[default: ({defaults['where'].default})]",
        "[default: (--chart)]" if options.chart else "[default: (--no-chart)]",
    ):
        assert shown in result.stdout, shown


def test_version() -> None:
    from importlib.metadata import version

    result = runner.invoke(app, ["--version"])

    assert result.exit_code == 0
    assert result.stdout == f"breaker (sfn-breaker) {version('sfn-breaker')}\n"


def test_demo_without_the_local_extra_names_it_in_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def run_demo(**options: Any) -> None:
        raise ModuleNotFoundError("No module named 'moto'", name="moto")  # what starting the emulator raises

    fake = types.ModuleType("sfn_breaker.demo")
    fake.run_demo = run_demo  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sfn_breaker.demo", fake)

    result = breaker("demo", state_dir=tmp_path)

    assert result.exit_code == EXIT_ERROR
    assert result.stderr == (
        'error: `breaker demo` needs the local extra (moto is not installed): pip install "sfn-breaker[local]"\n'
    )


# --------------------------------------------------------------------------- durations


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("10m", 600), ("2h", 7200), ("1d", 86400), ("1h30m", 5400), ("1d2h3m4s", 93784)]
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize("text", ["", "0s", "soon", "5x", "-5m", "45", "10 "])
def test_durations_that_mean_nothing(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


# --------------------------------------------------------------------------- without the cli extra


@pytest.mark.parametrize("module", ["typer", "rich"])
def test_without_the_cli_extra_breaker_names_it_in_one_line(module: str) -> None:
    blocked = f"import sys; sys.modules[{module!r}] = None; from sfn_breaker.cli import main; main()"

    result = subprocess.run([sys.executable, "-c", blocked], capture_output=True, text=True, timeout=120)

    assert result.returncode == 1
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert 'pip install "sfn-breaker[cli]"' in result.stderr
    assert module in result.stderr
    assert "Traceback" not in result.stderr
