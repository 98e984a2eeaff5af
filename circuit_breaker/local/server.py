"""The local emulator: the synthesized stack on moto, served on a loopback port.

What it is made of, and why:

- **moto, in this process.** The emulator runs moto's backends under ``mock_aws`` (Lambda
  without Docker, Step Functions executing definitions) and serves them over HTTP with moto's
  own WSGI app on a loopback port. Running in-process is what lets ``LambdaRuntime`` run the
  project's real handlers when the workflow invokes them, and ``mock_aws`` means the handlers'
  own boto3 calls (and the workflow's service integrations) reach the same backends without a
  network hop. While a ``LocalBreaker`` runs, *every* boto3 call in its process goes to the
  emulator.
- **The stack from ``cdk synth``.** ``LocalBreaker`` synthesizes ``app.py`` (or takes an
  assembly), deploys it with ``deploy_stack`` and refuses to start when ``check_deployment``
  finds a difference from the template.
- **StartSyncExecution, as AWS answers it.** moto has no ``StartSyncExecution``.
  ``SyncExecutionMiddleware`` answers it in front of moto: it starts the execution with moto's
  ``StartExecution``, waits for its end, and returns AWS's response shape. So the client and
  the CLI use one code path against AWS and against the emulator. botocore sends this operation
  to the host ``sync-<endpoint>``; against a custom endpoint a client needs
  ``Config(inject_host_prefix=False)`` (``BreakerClient`` does this by itself; for other tools,
  ``AWS_DISABLE_HOST_PREFIX_INJECTION=true``).

``breaker local up`` runs ``python -m circuit_breaker.local.server`` as a background process
(``start_background``), which records its endpoint and pid in a state file once the stack is
deployed; ``breaker local down`` (``stop_background``) stops it.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from circuit_breaker.contract import (
    EMULATOR_ACCESS_KEY,
    EMULATOR_REGION,
    EMULATOR_SECRET_KEY,
    EXPRESS_MAX_SECONDS,
    TABLE_OUTPUT,
)
from circuit_breaker.local.assembly import Assembly, synth
from circuit_breaker.local.emulator import LambdaRuntime, LocalStack, check_deployment, deploy_stack

if TYPE_CHECKING:
    import boto3
    from werkzeug.serving import BaseWSGIServer

    from circuit_breaker.client import AsyncBreakerClient, BreakerClient

DEFAULT_HOST = "127.0.0.1"
MOTO_CONFIG: Any = {
    "lambda": {"use_docker": False},
    "stepfunctions": {"execute_state_machine": True},
}
HEALTH_PATH = "/_breaker/health"
STATE_DIR_ENV = "BREAKER_STATE_DIR"
STATE_FILE_NAME = "local.json"

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class EmulatorError(RuntimeError):
    """The local emulator could not be started, reached or stopped."""


# --------------------------------------------------------------------------- StartSyncExecution


class SyncExecutionMiddleware:
    """WSGI middleware in front of moto that answers ``StartSyncExecution`` as AWS does.

    Everything else goes to moto unchanged, so errors (``StateMachineDoesNotExist``,
    ``InvalidExecutionInput``, ...) keep moto's (AWS's) shape. ``health`` is served on
    ``HEALTH_PATH`` so that a client can tell this emulator from whatever else holds a port.
    """

    TARGET = "AWSStepFunctions.StartSyncExecution"

    def __init__(
        self,
        app: WSGIApp,
        *,
        poll_seconds: float = 0.005,
        limit_seconds: float = EXPRESS_MAX_SECONDS,
        health: Mapping[str, Any] | None = None,
    ) -> None:
        self.app = app
        self.poll_seconds = poll_seconds
        self.limit_seconds = limit_seconds
        self.health = dict(health or {})
        self.sync_executions = 0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == HEALTH_PATH:
            return _respond(start_response, 200, {"ok": True, **self.health})
        if environ.get("HTTP_X_AMZ_TARGET") == self.TARGET:
            return self._start_sync_execution(environ, start_response)
        return self.app(environ, start_response)

    def _start_sync_execution(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            request = json.loads(environ["wsgi.input"].read(length) or b"{}")
            if not isinstance(request, dict):
                raise ValueError("the request body must be a JSON object")
        except ValueError as exc:
            return _error(start_response, "SerializationException", f"Invalid request body: {exc}")
        machine_arn = request.get("stateMachineArn")
        if not isinstance(machine_arn, str):
            return _error(start_response, "ValidationException", "stateMachineArn is required")

        status, machine = self._moto(environ, "DescribeStateMachine", {"stateMachineArn": machine_arn})
        if status != 200:
            return _respond(start_response, status, machine)
        if machine.get("type") != "EXPRESS":
            return _error(
                start_response,
                "StateMachineTypeNotSupported",
                "This operation is supported only by Express state machines.",
            )

        start = {
            "stateMachineArn": machine_arn,
            "name": request.get("name") or str(uuid.uuid4()),
            "input": request.get("input", "{}"),
        }
        if request.get("traceHeader"):
            start["traceHeader"] = request["traceHeader"]
        status, started = self._moto(environ, "StartExecution", start)
        if status != 200:
            return _respond(start_response, status, started)
        self.sync_executions += 1

        execution_arn = started["executionArn"]
        deadline = time.monotonic() + self.limit_seconds
        while True:
            status, described = self._moto(environ, "DescribeExecution", {"executionArn": execution_arn})
            if status != 200:
                return _respond(start_response, status, described)
            if described["status"] != "RUNNING":
                break
            if time.monotonic() > deadline:
                self._moto(environ, "StopExecution", {"executionArn": execution_arn, "error": "States.Timeout"})
                described = {**described, "status": "TIMED_OUT", "stopDate": time.time()}
                break
            time.sleep(self.poll_seconds)
        return _respond(start_response, 200, sync_response(described, start["input"]))

    def _moto(self, environ: dict[str, Any], action: str, payload: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        """Call one Step Functions action on moto with the caller's headers (account, region)."""
        body = json.dumps(payload).encode()
        inner = {key: value for key, value in environ.items() if not key.startswith("werkzeug.request")}
        inner.update(
            {
                "wsgi.input": io.BytesIO(body),
                "CONTENT_LENGTH": str(len(body)),
                "HTTP_X_AMZ_TARGET": f"AWSStepFunctions.{action}",
            }
        )
        captured: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            captured["status"] = int(status.split(" ", 1)[0])

        chunks = self.app(inner, start_response)
        try:
            data = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        try:
            parsed = json.loads(data) if data else {}
        except ValueError:
            parsed = {"__type": "InternalFailure", "message": data.decode(errors="replace")}
        return captured["status"], parsed


def sync_response(described: Mapping[str, Any], execution_input: str) -> dict[str, Any]:
    """AWS's ``StartSyncExecution`` response for a finished execution, from ``DescribeExecution``."""
    status = described["status"]
    if status not in ("SUCCEEDED", "FAILED", "TIMED_OUT"):
        status = "FAILED"  # ABORTED: a synchronous execution has no other way to end
    start = _epoch(described.get("startDate")) or time.time()
    stop = _epoch(described.get("stopDate")) or time.time()
    response: dict[str, Any] = {
        "executionArn": described["executionArn"],
        "stateMachineArn": described["stateMachineArn"],
        "name": described.get("name"),
        "startDate": start,
        "stopDate": stop,
        "status": status,
        "input": described.get("input", execution_input),
        "inputDetails": {"included": True},
        # Express workflows are billed in 100 ms steps and 64 MB steps.
        "billingDetails": {
            "billedDurationInMilliseconds": max(100, math.ceil((stop - start) * 10) * 100),
            "billedMemoryUsedInMB": 64,
        },
    }
    if status == "SUCCEEDED":
        response["output"] = described.get("output", "null")
        response["outputDetails"] = {"included": True}
    else:
        response["error"] = described.get("error") or ("States.Timeout" if status == "TIMED_OUT" else "States.Runtime")
        if described.get("cause") is not None:
            response["cause"] = described["cause"]
    return response


def _epoch(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    return datetime.fromisoformat(str(value)).timestamp()


def _respond(start_response: Callable[..., Any], status: int, body: Mapping[str, Any]) -> list[bytes]:
    data = json.dumps(body).encode()
    reason = "OK" if status == 200 else "Bad Request" if status < 500 else "Internal Server Error"
    start_response(
        f"{status} {reason}",
        [("Content-Type", "application/x-amz-json-1.0"), ("Content-Length", str(len(data)))],
    )
    return [data]


def _error(start_response: Callable[..., Any], code: str, message: str) -> list[bytes]:
    return _respond(start_response, 400, {"__type": code, "message": message})


# --------------------------------------------------------------------------- the emulator


class LocalBreaker:
    """The breaker on an embedded emulator, for the life of a ``with`` block::

        with LocalBreaker(context_overrides={"circuit-breaker": {"openDurationSeconds": 5}}) as local:
            client = local.client()           # a BreakerClient bound to local.endpoint_url
            client.call("payment", {"mode": "ok"})
            local.runtime.settle()            # stream deliveries done

    :param assembly: a synthesized assembly to deploy; by default ``app.py`` is synthesized
        (about 10 s) with ``context_overrides`` merged into ``cdk.json``'s context.
    :param port: the loopback port; 0 picks a free one.
    :param state_file: when given, the emulator's endpoint and pid are written there once it
        is ready (and removed when it stops), which is how the CLI finds it.
    """

    def __init__(
        self,
        *,
        assembly: Assembly | None = None,
        context_overrides: Mapping[str, Any] | None = None,
        host: str = DEFAULT_HOST,
        port: int = 0,
        region: str = EMULATOR_REGION,
        state_file: Path | None = None,
    ) -> None:
        if assembly is not None and context_overrides:
            raise ValueError("give either an assembly or context overrides to synthesize one, not both")
        self.assembly: Assembly | None = assembly
        self.context_overrides = dict(context_overrides or {})
        self.host = host
        self.port = port
        self.region = region
        self.state_file = state_file
        self.runtime = LambdaRuntime()
        self._stack: LocalStack | None = None
        self._session: boto3.Session | None = None
        self._server: BaseWSGIServer | None = None
        self._middleware: SyncExecutionMiddleware | None = None
        self._exit = ExitStack()

    # -- what a caller uses
    @property
    def endpoint_url(self) -> str:
        if self._server is None:
            raise EmulatorError("the emulator is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def session(self) -> boto3.Session:
        """A boto3 session with the emulator's credentials and region (pass ``endpoint_url`` to its clients)."""
        if self._session is None:
            raise EmulatorError("the emulator is not running")
        return self._session

    @property
    def stack(self) -> LocalStack:
        if self._stack is None:
            raise EmulatorError("the emulator is not running")
        return self._stack

    @property
    def sync_executions(self) -> int:
        """How many ``StartSyncExecution`` calls the emulator has answered."""
        return self._middleware.sync_executions if self._middleware else 0

    def client(self, **kwargs: Any) -> BreakerClient:
        """A ``BreakerClient`` for this emulator's stack."""
        from circuit_breaker.client import BreakerClient

        return BreakerClient(session=self.session, endpoint_url=self.endpoint_url, **self._client_kwargs(kwargs))

    def async_client(self, **kwargs: Any) -> AsyncBreakerClient:
        """An ``AsyncBreakerClient`` for this emulator's stack."""
        from circuit_breaker.client import AsyncBreakerClient

        return AsyncBreakerClient(session=self.session, endpoint_url=self.endpoint_url, **self._client_kwargs(kwargs))

    def boto3_client(self, service_name: str) -> Any:
        """A plain boto3 client for the emulator (host prefixes off, as the emulator needs)."""
        from botocore.config import Config

        session: Any = self.session
        return session.client(service_name, endpoint_url=self.endpoint_url, config=Config(inject_host_prefix=False))

    def _client_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The stack's names, unless the caller gives its own (no discovery round trip needed)."""
        return {
            "state_machine_arn": self.stack.state_machine_arn,
            "table_name": self.stack.outputs[TABLE_OUTPUT],
            "stack_name": self.stack.name,
            **kwargs,
        }

    # -- life cycle
    def __enter__(self) -> LocalBreaker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> LocalBreaker:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        import boto3
        from moto import mock_aws
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import make_server

        if self.assembly is None:
            workdir = Path(self._exit.enter_context(tempfile.TemporaryDirectory(prefix="breaker-cdk-")))
            self.assembly = synth(workdir / "cdk.out", self.context_overrides)
        assembly = self.assembly

        self._exit.enter_context(_environment(AWS_EMULATOR_REGION=self.region, AWS_REGION=self.region))
        self._exit.enter_context(mock_aws(config=MOTO_CONFIG))
        self._exit.enter_context(self.runtime.installed())

        # The interpreter logs every Fail state at ERROR level: expected outcomes here, not news.
        self._exit.enter_context(_logger_level("moto.stepfunctions.parser", logging.CRITICAL))
        self._middleware = SyncExecutionMiddleware(
            DomainDispatcherApplication(create_backend_app),
            health={"pid": os.getpid(), "stackName": assembly.stack_name, "region": self.region},
        )
        self._server = make_server(
            self.host, self.port, self._middleware, threaded=True, request_handler=_quiet_request_handler()
        )
        thread = threading.Thread(target=self._server.serve_forever, name="breaker-emulator", daemon=True)
        thread.start()
        self._exit.callback(thread.join, 10)
        self._exit.callback(self._server.shutdown)

        self._session = boto3.Session(
            aws_access_key_id=EMULATOR_ACCESS_KEY, aws_secret_access_key=EMULATOR_SECRET_KEY, region_name=self.region
        )
        self._stack = deploy_stack(assembly, self._session)
        problems = check_deployment(assembly, self._stack, self._session)
        if problems:
            raise EmulatorError("the emulator's deployment differs from the template:\n" + "\n".join(problems))

        if self.state_file is not None:
            state = EmulatorState(
                pid=os.getpid(),
                endpoint_url=self.endpoint_url,
                region=self.region,
                stack_name=assembly.stack_name,
                started_at=time.time(),
                log_file=str(log_file_for(self.state_file)),
            )
            state.write(self.state_file)
            self._exit.callback(_remove_state, self.state_file, os.getpid())

    def stop(self) -> None:
        self._exit.close()
        self._server = None


def _quiet_request_handler() -> type:
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    class QuietRequestHandler(MotoRequestHandler):
        """moto's request handler without a log line per request (errors are still logged)."""

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            pass

    return QuietRequestHandler


@contextmanager
def _logger_level(name: str, level: int) -> Iterator[None]:
    logger = logging.getLogger(name)
    saved = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(saved)


@contextmanager
def _environment(**values: str) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# --------------------------------------------------------------------------- the state file


@dataclass(frozen=True)
class EmulatorState:
    """What ``breaker local up`` records about the running emulator."""

    pid: int
    endpoint_url: str
    region: str
    stack_name: str
    started_at: float
    log_file: str | None = None

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}")
        partial.write_text(json.dumps(asdict(self), indent=2))
        partial.replace(path)  # atomic: a reader never sees half a file

    @classmethod
    def read(cls, path: Path) -> EmulatorState | None:
        """The recorded state, or ``None`` when there is no (readable) state file."""
        try:
            data = json.loads(path.read_text())
            return cls(**data)
        except (OSError, ValueError, TypeError):
            return None

    def is_alive(self, timeout: float = 2.0) -> bool:
        """Whether this emulator answers on its endpoint (and is the process recorded)."""
        try:
            with urllib.request.urlopen(f"{self.endpoint_url}{HEALTH_PATH}", timeout=timeout) as response:
                health = json.loads(response.read())
        except (OSError, ValueError):
            return False
        return bool(health.get("ok")) and health.get("pid") == self.pid


def default_state_file() -> Path:
    """``$BREAKER_STATE_DIR/local.json``, else under ``$XDG_CACHE_HOME`` or ``~/.cache``."""
    directory = os.environ.get(STATE_DIR_ENV)
    if directory:
        return Path(directory) / STATE_FILE_NAME
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "circuit-breaker" / STATE_FILE_NAME


def log_file_for(state_file: Path) -> Path:
    return state_file.with_suffix(".log")


def _remove_state(path: Path, pid: int) -> None:
    state = EmulatorState.read(path)
    if state is not None and state.pid == pid:
        path.unlink(missing_ok=True)


# --------------------------------------------------------------------------- background process


@dataclass(frozen=True)
class Started:
    state: EmulatorState
    already_running: bool


def start_background(
    state_file: Path | None = None,
    *,
    port: int = 0,
    context_overrides: Mapping[str, Any] | None = None,
    assembly_dir: Path | None = None,
    timeout: float = 180.0,
) -> Started:
    """Start the emulator as a background process (unless one is running) and wait until it is ready.

    The wait is bounded by ``timeout`` seconds; the process's output goes to a log file next to
    the state file, and its last lines are in the error when it fails to start.
    """
    state_file = state_file or default_state_file()
    current = EmulatorState.read(state_file)
    if current is not None and current.is_alive():
        return Started(current, already_running=True)
    state_file.unlink(missing_ok=True)

    state_file.parent.mkdir(parents=True, exist_ok=True)
    log_path = log_file_for(state_file)
    command = [sys.executable, "-m", "circuit_breaker.local.server", "--state-file", str(state_file)]
    command += ["--port", str(port)]
    if assembly_dir is not None:
        command += ["--assembly", str(assembly_dir)]
    if context_overrides:
        command += ["--context", json.dumps(dict(context_overrides))]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # it outlives this command, and Ctrl-C here does not reach it
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    deadline = time.monotonic() + timeout
    while True:
        code = process.poll()
        if code is not None:
            raise EmulatorError(f"the emulator exited with status {code} while starting:\n{_tail(log_path)}")
        state = EmulatorState.read(state_file)
        if state is not None and state.pid == process.pid:
            # It runs on in its own session; this process will not wait for it.
            process.returncode = 0
            return Started(state, already_running=False)
        if time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise EmulatorError(f"the emulator was not ready after {timeout:.0f} s:\n{_tail(log_path)}")
        time.sleep(0.1)


def stop_background(state_file: Path | None = None, *, timeout: float = 30.0) -> EmulatorState | None:
    """Stop the recorded emulator; returns its state, or ``None`` when none was running."""
    state_file = state_file or default_state_file()
    state = EmulatorState.read(state_file)
    if state is None:
        return None
    if not state.is_alive():
        state_file.unlink(missing_ok=True)
        return None
    os.kill(state.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _process_exists(state.pid):
        if time.monotonic() > deadline:
            os.kill(state.pid, signal.SIGKILL)
            deadline = time.monotonic() + timeout
        time.sleep(0.05)
    state_file.unlink(missing_ok=True)
    return state


def _process_exists(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)  # reap it when it is this process's child
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def main(argv: list[str] | None = None) -> None:
    """``python -m circuit_breaker.local.server``: run the emulator until SIGTERM or Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--state-file", type=Path, default=None)
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--region", default=EMULATOR_REGION)
    parser.add_argument("--assembly", type=Path, default=None, help="a synthesized cloud assembly directory")
    parser.add_argument("--context", default=None, help="CDK context overrides, as a JSON object")
    args = parser.parse_args(argv)

    def terminate(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    assembly = Assembly(args.assembly) if args.assembly else None
    overrides = json.loads(args.context) if args.context else None
    # The handlers run in this process: give them the credentials and region a Lambda has.
    os.environ.setdefault("AWS_ACCESS_KEY_ID", EMULATOR_ACCESS_KEY)
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", EMULATOR_SECRET_KEY)
    local = LocalBreaker(
        assembly=assembly,
        context_overrides=overrides,
        host=args.host,
        port=args.port,
        region=args.region,
        state_file=args.state_file or default_state_file(),
    )
    try:
        with local:
            print(f"circuit breaker emulator ready at {local.endpoint_url} (pid {os.getpid()})", flush=True)
            threading.Event().wait()
    except KeyboardInterrupt:
        print("circuit breaker emulator stopped", flush=True)


if __name__ == "__main__":
    main()
