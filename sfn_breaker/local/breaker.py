"""The emulator in this process: the synthesized stack on moto, served on a loopback port.

What ``LocalBreaker`` is made of, and why:

- **moto, in this process.** The emulator runs moto's backends under ``mock_aws`` (Lambda
  without Docker, Step Functions executing definitions) and serves them over HTTP with moto's
  own WSGI app on a loopback port. Running in-process is what lets ``LambdaRuntime`` (in
  ``sfn_breaker.local.runtime``) run the project's real handlers when the workflow invokes
  them, and ``mock_aws`` means the handlers' own boto3 calls (and the workflow's service
  integrations) reach the same backends without a network hop. While a ``LocalBreaker`` runs,
  *every* boto3 call in its process goes to the emulator.
- **The stack from ``cdk synth``.** ``LocalBreaker`` synthesizes ``app.py`` (or takes an
  assembly), deploys it with ``deploy_stack`` and refuses to start when ``check_deployment``
  finds a difference from the template (both in ``sfn_breaker.local.deploy``).
- **StartSyncExecution, as AWS answers it.** moto has no ``StartSyncExecution``;
  ``SyncExecutionMiddleware`` (in ``sfn_breaker.local.sync_api``) answers it in front of
  moto, so the client and the CLI use one code path against AWS and against the emulator.

``breaker local up`` runs the same emulator as a background process,
``python -m sfn_breaker.local.background``; with a ``state_file``, a ``LocalBreaker``
records its endpoint and pid there (``sfn_breaker.local.state``) once the stack is deployed.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sfn_breaker.contract import (
    EMULATOR_ACCESS_KEY,
    EMULATOR_REGION,
    EMULATOR_SECRET_KEY,
    TABLE_OUTPUT,
)
from sfn_breaker.errors import EmulatorError
from sfn_breaker.local.assembly import AppError, Assembly, choose_stack, synth, synth_app
from sfn_breaker.local.deploy import DeployedStack, check_deployment, deploy_stack, invoked_functions
from sfn_breaker.local.interpreter import Speedups
from sfn_breaker.local.runtime import HandlerNotFoundError, LambdaRuntime
from sfn_breaker.local.state import EmulatorState, Origin, log_file_for, remove_state
from sfn_breaker.local.sync_api import SyncExecutionMiddleware

if TYPE_CHECKING:
    import boto3
    from werkzeug.serving import BaseWSGIServer

    from sfn_breaker.client import AsyncBreakerClient, BreakerClient

DEFAULT_HOST = "127.0.0.1"
MOTO_CONFIG: Any = {
    "lambda": {"use_docker": False},
    "stepfunctions": {"execute_state_machine": True},
}


class LocalBreaker:
    """The breaker on an embedded emulator, for the life of a ``with`` block::

        with LocalBreaker(context_overrides={"circuit-breaker": {"openDurationSeconds": 5}}) as local:
            client = local.client()           # a BreakerClient bound to local.endpoint_url
            client.call("payment", {"mode": "ok"})
            local.runtime.settle()            # stream deliveries done

    Or your own CDK app, whose stack holds a ``CircuitBreaker`` and whose Python services run in
    this process::

        with LocalBreaker(app="python3 app.py", app_dir=Path("."), stack_name="Orders") as local:
            local.client().call("orders", {"id": 7})

    :param assembly: a synthesized assembly to deploy; by default the package's demo app is
        synthesized (about 10 s) with ``context_overrides`` merged into its context.
    :param app: a CDK app command, as in ``cdk.json``, run in ``app_dir`` (default: the current
        folder) with ``cdk.json``'s context; ``stack_name`` picks its stack (needed when it has several).
    :param port: the loopback port; 0 picks a free one.
    :param state_file: when given, the emulator's endpoint and pid are written there once it
        is ready (and removed when it stops), which is how the CLI finds it.
    :param speedups: the interpreter's speed-ups (``sfn_breaker.local.interpreter``), all on
        by default; ``Speedups.none()`` runs at moto's own speed, to measure the difference.
    """

    def __init__(
        self,
        *,
        assembly: Assembly | None = None,
        context_overrides: Mapping[str, Any] | None = None,
        app: str | None = None,
        app_dir: Path | None = None,
        stack_name: str | None = None,
        host: str = DEFAULT_HOST,
        port: int = 0,
        region: str = EMULATOR_REGION,
        state_file: Path | None = None,
        speedups: Speedups | None = None,
    ) -> None:
        if assembly is not None and context_overrides:
            raise ValueError("give either an assembly or context overrides to synthesize one, not both")
        if app is not None and (assembly is not None or context_overrides):
            raise ValueError("give either an app or an assembly (or context overrides for the demo app), not several")
        self.app = app
        self.app_dir = Path(app_dir) if app_dir is not None else Path.cwd()
        self.stack_name = stack_name
        self.assembly: Assembly | None = assembly
        self.context_overrides = dict(context_overrides or {})
        self.host = host
        self.port = port
        self.region = region
        self.state_file = state_file
        self.runtime = LambdaRuntime(speedups)
        #: What the state file says this emulator runs (``breaker local up`` compares it with a new request).
        self.origin = (
            Origin(app=app, app_dir=str(self.app_dir.resolve()))
            if app is not None
            else Origin(assembly=str(assembly.directory.resolve()))
            if assembly is not None
            else Origin(settings=self.context_overrides or None)
        )
        self._stack: DeployedStack | None = None
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
    def stack(self) -> DeployedStack:
        if self._stack is None:
            raise EmulatorError("the emulator is not running")
        return self._stack

    @property
    def sync_executions(self) -> int:
        """How many ``StartSyncExecution`` calls the emulator has answered."""
        return self._middleware.sync_executions if self._middleware else 0

    def client(self, **kwargs: Any) -> BreakerClient:
        """A ``BreakerClient`` for this emulator's stack."""
        from sfn_breaker.client import BreakerClient

        return BreakerClient(session=self.session, endpoint_url=self.endpoint_url, **self._client_kwargs(kwargs))

    def async_client(self, **kwargs: Any) -> AsyncBreakerClient:
        """An ``AsyncBreakerClient`` for this emulator's stack."""
        from sfn_breaker.client import AsyncBreakerClient

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
            if self.app is not None:
                self.assembly = choose_stack(synth_app(self.app, self.app_dir, workdir / "cdk.out"), self.stack_name)
            else:
                self.assembly = synth(workdir / "cdk.out", self.context_overrides)
        assembly = self.assembly

        self._exit.enter_context(_environment(AWS_EMULATOR_REGION=self.region, AWS_REGION=self.region))
        self._exit.enter_context(mock_aws(config=MOTO_CONFIG))
        self._exit.enter_context(self.runtime.installed())

        # The interpreter logs every Fail state at ERROR level: expected outcomes here, not news.
        self._exit.enter_context(_logger_level("moto.stepfunctions.parser", logging.CRITICAL))
        interpreter = self.runtime.interpreter
        self._middleware = SyncExecutionMiddleware(
            DomainDispatcherApplication(create_backend_app),
            health={"pid": os.getpid(), "stackName": assembly.stack_name, "region": self.region},
            wait_for_end=interpreter.wait_for_end if interpreter.speedups.wake_on_end else None,
            region=self.region,
        )
        try:
            self._server = make_server(
                self.host, self.port, self._middleware, threaded=True, request_handler=_quiet_request_handler()
            )
        except SystemExit:  # werkzeug says so on stderr and exits the process when the port is taken
            raise EmulatorError(f"port {self.port} on {self.host} is in use by another program") from None
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
        self._check_services(assembly)

        if self.state_file is not None:
            state = EmulatorState(
                pid=os.getpid(),
                endpoint_url=self.endpoint_url,
                region=self.region,
                stack_name=assembly.stack_name,
                started_at=time.time(),
                log_file=str(log_file_for(self.state_file)),
                origin=self.origin,
            )
            state.write(self.state_file)
            self._exit.callback(remove_state, self.state_file, os.getpid())

    def _check_services(self, assembly: Assembly) -> None:
        """Every function the workflow invokes can run here: a Python runtime, a handler that imports."""
        from moto.awslambda_simple.models import lambda_simple_backends

        account = self.session.client("sts").get_caller_identity()["Account"]
        backend = lambda_simple_backends[account][self.region]
        for logical_id in invoked_functions(assembly.template):
            name = self.stack.physical_ids.get(logical_id)
            if name is None:
                continue
            function = backend.get_function(name)
            runtime = str(function.run_time or "")
            if not runtime.startswith("python"):
                raise AppError(
                    f"function {logical_id} runs on {runtime or 'an unknown runtime'}: "
                    "only Python handlers run in-process on the emulator"
                )
            try:
                self.runtime.resolve(function)
            except HandlerNotFoundError as exc:
                raise AppError(
                    f"function {logical_id}: its handler {function.handler!r} cannot be found: {exc}"
                ) from None
            except Exception as exc:
                raise AppError(
                    f"function {logical_id}: its handler {function.handler!r} cannot be imported: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc

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
