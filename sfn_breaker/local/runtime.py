"""Run the project's Lambda handlers in this process, where moto would need Docker.

moto runs Lambda code only through Docker (see shared/MOTO_NOTES.md). While installed,
``LambdaRuntime`` replaces moto's Lambda invocation with an in-process call of the handler the
function names (or of a scripted stand-in a test provides), and delivers the table's stream
records to their function on a background thread, once each, as AWS does. It also installs the
changes to moto's Step Functions interpreter that keep executions from hanging and make them
fast (``sfn_breaker.local.interpreter``).
"""

from __future__ import annotations

import importlib
import importlib.util
import io
import json
import os
import queue
import shutil
import sys
import tempfile
import threading
import time
import traceback
import uuid
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sfn_breaker.local.interpreter import Interpreter, Speedups

Handler = Callable[[Any, Any], Any]


@dataclass
class FakeContext:
    """The parts of the Lambda context object that handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int = 128
    timeout_seconds: int = 3
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    invoked_function_arn: str = ""
    log_group_name: str = ""
    log_stream_name: str = ""
    _deadline: float = field(default=0.0, repr=False)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass
class Invocation:
    function_name: str
    event: Any
    ok: bool = True
    error: str | None = None
    result: Any = None


def lambda_error(exc: BaseException) -> dict[str, Any]:
    """An unhandled error as AWS's Python runtime reports it: ``errorMessage``, ``errorType`` and
    the stack trace of the function's own code. The frames of the emulator that called the
    handler are left out, as AWS leaves out its runtime's."""
    frames = traceback.extract_tb(exc.__traceback__)
    own = [frame for frame in frames if os.path.dirname(frame.filename) not in _EMULATOR_DIRS]
    return {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "stackTrace": traceback.format_list(own),
    }


def _load_module(path: Path, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


_EMULATOR_DIRS = frozenset({os.path.dirname(__file__), str(Path(__file__).resolve().parent)})


class HandlerNotFoundError(AttributeError):
    """A function's handler names a module or function its code does not have; the message names
    them as the user wrote them (``inventory.py has no function 'handlr'``)."""


class LambdaRuntime:
    """Runs Lambda invocations and stream deliveries in this process while installed.

    ``stand_in(name, handler)`` makes calls to a function (by name, ARN or a substring of its
    name) go to ``handler`` instead of its code: a test's scripted downstream service.
    ``speedups`` chooses the interpreter's speed-ups (all by default; ``Speedups.none()`` is
    moto's own speed, to measure the difference).
    """

    def __init__(self, speedups: Speedups | None = None) -> None:
        self.interpreter = Interpreter(speedups)
        self.invocations: list[Invocation] = []
        self._stand_ins: dict[str, Handler] = {}
        self._lock = threading.Lock()
        self._stream_queue: queue.Queue[tuple[Any, str, dict[str, Any]] | None] = queue.Queue()
        self._stream_errors: list[str] = []
        self._worker: threading.Thread | None = None
        self._patches: list[tuple[Any, str, Any]] = []
        self._code_dirs: dict[str, Path] = {}
        self._handlers: dict[tuple[str, str], Handler] = {}
        self._import_lock = threading.RLock()

    # -- public API
    def stand_in(self, function: str, handler: Handler) -> None:
        self._stand_ins[function] = handler

    def calls_to(self, function: str) -> list[Invocation]:
        with self._lock:
            return [i for i in self.invocations if function in i.function_name]

    def settle(self, timeout: float = 10.0) -> None:
        """Wait until every stream record written so far has been handled (and what that wrote)."""
        deadline = time.monotonic() + timeout
        while self._stream_queue.unfinished_tasks:
            if time.monotonic() > deadline:
                raise TimeoutError("stream records still pending")
            time.sleep(0.005)
        if self._stream_errors:
            errors, self._stream_errors = self._stream_errors, []
            raise RuntimeError("stream handler failed:\n" + "\n".join(errors))

    @contextmanager
    def installed(self) -> Iterator[LambdaRuntime]:
        from moto.awslambda.models import LambdaBackend
        from moto.awslambda_simple.models import LambdaSimpleBackend

        runtime = self

        def invoke(
            backend: Any, function_name: str, qualifier: Any, body: Any, headers: Any, response_headers: Any
        ) -> bytes:
            return runtime._invoke(backend, function_name, body, response_headers)

        def send_dynamodb_items(backend: Any, function_arn: str, items: list[Any], source: str) -> str:
            runtime._enqueue_stream(backend, function_arn, items, source)
            return "queued"

        self._patch(LambdaSimpleBackend, "invoke", invoke)
        self._patch(LambdaBackend, "send_dynamodb_items", send_dynamodb_items)
        self._worker = threading.Thread(target=self._stream_worker, name="stream-delivery", daemon=True)
        self._worker.start()
        try:
            with self.interpreter.installed():
                yield self
        finally:
            self._stream_queue.put(None)
            self._worker.join(timeout=10)
            for owner, name, original in reversed(self._patches):
                if original is None:
                    delattr(owner, name)
                else:
                    setattr(owner, name, original)
            self._patches.clear()
            for directory in self._code_dirs.values():
                if str(directory) in sys.path:
                    sys.path.remove(str(directory))
                shutil.rmtree(directory, ignore_errors=True)
            self._code_dirs.clear()
            self._handlers.clear()

    # -- internals
    def _patch(self, owner: Any, name: str, replacement: Any) -> None:
        self._patches.append((owner, name, owner.__dict__.get(name)))
        setattr(owner, name, replacement)

    def _function(self, backend: Any, function_name: str) -> Any:
        return backend.get_function(function_name)

    def _handler_for(self, function: Any) -> Handler:
        for key, stand_in in self._stand_ins.items():
            if key in function.function_name or key == function.function_arn:
                return stand_in
        return self.resolve(function)

    def resolve(self, function: Any) -> Handler:
        """The handler a moto function names, imported from its deployed code (raises what the import raises).

        A top-level handler module of the function's own code (``index.handler`` from
        ``Code.from_inline``, ``orders.handler`` from an asset folder) is loaded from that code
        under a private module name, so that two functions whose modules share a name (every inline
        function's is ``index``) each run their own; a dotted module (``sfn_breaker.lambdas....``)
        is imported as usual.
        """
        key = (function.code_sha_256 or "", function.handler)
        handler = self._handlers.get(key)
        if handler is not None:
            return handler
        with self._import_lock:
            directory = self._put_code_on_path(function)
            module_name, _, attribute = function.handler.rpartition(".")
            if not module_name or not attribute:
                raise HandlerNotFoundError(f"{function.handler!r} is not MODULE.FUNCTION (e.g. 'orders.handler')")
            own_file = directory / f"{module_name}.py" if directory is not None and "." not in module_name else None
            if own_file is not None and own_file.is_file():
                module = _load_module(
                    own_file, f"_breaker_code_{key[0][:16].replace('/', '_').replace('+', '_')}_{module_name}"
                )
                where = own_file.name  # the user's file; the module's private name would mean nothing to them
            else:
                module = importlib.import_module(module_name)
                where = f"module {module_name}"
            handler = getattr(module, attribute, None)
            if not callable(handler):
                what = "no function" if handler is None else "no function (only a value)"
                raise HandlerNotFoundError(f"{where} has {what} {attribute!r}")
            self._handlers[key] = handler
        return handler

    def _put_code_on_path(self, function: Any) -> Path | None:
        """Make the function's deployed code importable: its zip, unpacked once, goes on sys.path.

        It is appended, so a module that is already importable (this project's own packages)
        is the one that runs; code only the deployed zip holds, such as the demo service or a
        user's own service, is found in the zip.
        """
        sha = function.code_sha_256
        if not sha:
            return None
        if sha in self._code_dirs:
            return self._code_dirs[sha]
        with self._lock:
            if sha in self._code_dirs:
                return self._code_dirs[sha]
            directory = Path(tempfile.mkdtemp(prefix="breaker-code-"))
            with zipfile.ZipFile(io.BytesIO(function.code_bytes)) as archive:
                archive.extractall(directory)
            self._code_dirs[sha] = directory
            sys.path.append(str(directory))
            return directory

    def _invoke(self, backend: Any, function_name: str, body: Any, response_headers: Any) -> bytes:
        function = self._function(backend, function_name)
        event = json.loads(body) if body else {}
        record = Invocation(function.function_name, event)
        with self._lock:
            self.invocations.append(record)
        try:
            result = self._call(function, event)
        except Exception as exc:
            record.ok, record.error = False, type(exc).__name__
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps(lambda_error(exc)).encode()
        record.result = result
        return json.dumps(result).encode()

    def _call(self, function: Any, event: Any) -> Any:
        variables = (function.environment_vars or {}) if hasattr(function, "environment_vars") else {}
        os.environ.update({k: str(v) for k, v in variables.items()})
        # What the Lambda runtime sets for every function (handlers' boto3 clients need the region).
        os.environ["AWS_REGION"] = os.environ["AWS_DEFAULT_REGION"] = function.region
        context = FakeContext(
            function_name=function.function_name,
            memory_limit_in_mb=int(function.memory_size or 128),
            timeout_seconds=int(function.timeout or 3),
            invoked_function_arn=function.function_arn,
            _deadline=time.monotonic() + int(function.timeout or 3),
        )
        return self._handler_for(function)(event, context)

    def _enqueue_stream(self, backend: Any, function_arn: str, items: list[Any], source: str) -> None:
        records = []
        for item in items:
            record = item.to_json()
            dynamodb = dict(record["dynamodb"])
            created: Any = dynamodb.get("ApproximateCreationDateTime")
            if hasattr(created, "timestamp"):
                dynamodb["ApproximateCreationDateTime"] = created.timestamp()
            records.append(
                {
                    "eventID": record["eventID"],
                    "eventName": record["eventName"],
                    "eventVersion": record["eventVersion"],
                    "eventSource": record["eventSource"],
                    "awsRegion": backend.region_name,
                    "dynamodb": dynamodb,
                    "eventSourceARN": source,
                }
            )
        self._stream_queue.put((backend, function_arn, {"Records": records}))

    def _stream_worker(self) -> None:
        while True:
            task = self._stream_queue.get()
            try:
                if task is None:
                    return
                backend, function_arn, event = task
                function = self._function(backend, function_arn)
                record = Invocation(function.function_name, event)
                with self._lock:
                    self.invocations.append(record)
                try:
                    self._call(function, event)
                except Exception:
                    record.ok = False
                    self._stream_errors.append(traceback.format_exc())
            finally:
                self._stream_queue.task_done()
