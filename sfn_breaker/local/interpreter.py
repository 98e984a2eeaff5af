"""moto's Step Functions interpreter, made safe under concurrency and fast enough to keep up.

While ``Interpreter.installed()`` is active (``LambdaRuntime.installed()`` enters it), these
changes apply to every execution moto runs in this process.

**Always on: an execution never hangs.**

- Each definition parse has its own query-language scope stack. moto's ``Preprocessor`` keeps
  ``_query_language_per_scope`` as a *class* attribute, so every thread that parses a
  definition pushes and pops one shared list; under 50 to 80 concurrent parses a thread pops
  another's scope, or reads an empty list (``IndexError``), and its execution thread dies.
- An execution whose interpreter thread raises ends at once as ``FAILED`` with error
  ``States.Runtime`` and a cause naming the exception (``INTERPRETER_FAILED``), instead of
  staying ``RUNNING`` for ever (moto leaves it so, and a ``StartSyncExecution`` then waited
  for the Express limit). The traceback goes to this module's logger.
- ``StopExecution`` on an execution whose program has not started yet (its definition still
  being parsed) stops it as soon as it starts, instead of raising ``AttributeError`` on the
  missing environment.
- A state's data is measured as AWS measures it: its JSON text, compact, in UTF-8 bytes
  (``within_state_size_quota``). moto counts the text ``json.dumps`` writes by default, with
  spaces after separators and every non-ASCII character as a ``\\uXXXX`` escape, so a payload of
  198 KB in UTF-8 Chinese counted as 396 KB there and failed ``States.DataLimitExceeded``.
- Every execution's end is announced: ``wait_for_end(arn, timeout)`` returns as soon as it has
  ended, so that ``StartSyncExecution`` answers without polling moto (``Speedups.wake_on_end``).

**Speed-ups (``Speedups``), each one a switch so that its effect can be measured**
(``bench/emulator_throughput.py``). Measured on the demo stack, moto spends its CPU per
execution on: parsing the definition (about 100 ms), building a JSONPath parser (PLY tables)
for every path it evaluates, creating a boto3 client for every service task, and the HTTP
round trips of polling ``DescribeExecution``.

- ``parse_cache``: each definition is parsed once and its program shared by every execution.
  Sharing is safe because moto's components keep no per-execution state: everything an
  execution changes lives in its ``Environment`` (the ``stack``, the ``heap``, the states'
  input, the event history). moto itself relies on this: a ``Map`` state runs one parsed
  ``Program`` in many threads at once. The one lazily written attribute, a component's
  ``heap_key`` (a random name for its slot in an environment's heap), is written before the
  program is shared, so no two threads race to choose it.
  ``tests/test_emulator_concurrency.py`` checks both: many concurrent executions each with its
  own history and output, and the shared program unchanged by them.
- ``jsonpath_cache``: JSONPath expressions are parsed once per path (``jsonpath_ng`` objects
  are read-only once built; ``find`` and ``update_or_create`` change only the data given).
- ``client_cache``: one boto3 client per region and service for the service integrations
  (botocore clients are thread-safe; moto creates one per task, from the shared default
  session, which is not).
- ``wake_on_end``: see above; ``SyncExecutionMiddleware`` takes ``wait_for_end``.
- ``dispatch_cache``: moto's HTTP front door (``DomainDispatcherApplication``) finds the backend
  for a host by listing moto's modules on disk and trying every URL pattern, under one lock,
  on every request; the answer for a host never changes, so it is kept.
"""

from __future__ import annotations

import datetime
import functools
import importlib
import json
import logging
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Any

LOG = logging.getLogger(__name__)

#: The error an execution ends with when the emulator's interpreter itself fails.
INTERPRETER_FAILED = "States.Runtime"
#: How many ended executions are remembered for ``wait_for_end`` callers that arrive late.
REMEMBERED_ENDS = 10_000


@dataclass(frozen=True)
class Speedups:
    """Which of the emulator's speed-ups are on (all, by default). See the module docstring."""

    parse_cache: bool = True
    jsonpath_cache: bool = True
    client_cache: bool = True
    wake_on_end: bool = True
    dispatch_cache: bool = True

    @classmethod
    def none(cls) -> Speedups:
        """moto's own behaviour (the fixes that keep executions from hanging stay on)."""
        return cls(**{field.name: False for field in fields(cls)})


class ExecutionEnds:
    """Which executions have ended, for threads waiting on one of them.

    An end is remembered (the last ``REMEMBERED_ENDS``), so a waiter that arrives after the end
    returns at once. A waiter whose event was forgotten meanwhile waits until its timeout:
    callers re-check the execution's status after every wait.
    """

    def __init__(self, remember: int = REMEMBERED_ENDS) -> None:
        self._remember = remember
        self._lock = threading.Lock()
        self._events: OrderedDict[str, threading.Event] = OrderedDict()

    def ended(self, execution_arn: str) -> None:
        with self._lock:
            event = self._events.pop(execution_arn, None) or threading.Event()
            self._events[execution_arn] = event
            while len(self._events) > self._remember:
                self._events.popitem(last=False)
        event.set()

    def wait(self, execution_arn: str, timeout: float) -> bool:
        """Wait until the execution has ended (``True``) or ``timeout`` seconds have passed."""
        with self._lock:
            event = self._events.get(execution_arn)
            if event is None:
                event = self._events[execution_arn] = threading.Event()
        return event.wait(timeout)


class Interpreter:
    """The changes to moto's interpreter described in the module docstring, while installed."""

    def __init__(self, speedups: Speedups | None = None) -> None:
        self.speedups = speedups or Speedups()
        self.ends = ExecutionEnds()
        self.parses = 0
        """How many times a definition was parsed for an execution (with the cache: once each)."""
        self.crashes = 0
        """How many executions ended because the interpreter itself failed."""
        self._programs: dict[str, Any] = {}
        self._parse_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._stop_lock = threading.Lock()
        self._clients: dict[tuple[str, str, bool], Any] = {}
        self._client_lock = threading.Lock()
        self._patches: list[tuple[Any, str, Any]] = []

    def wait_for_end(self, execution_arn: str, timeout: float) -> bool:
        return self.ends.wait(execution_arn, timeout)

    def program_for(self, definition: str) -> Any:
        """The parsed program of ``definition``: parsed once, then shared (``parse_cache``)."""
        from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent
        from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

        if not self.speedups.parse_cache:
            with self._count_lock:
                self.parses += 1
            return AmazonStateLanguageParser.parse(definition)[0]
        program = self._programs.get(definition)
        if program is None:
            with self._parse_lock:
                program = self._programs.get(definition)
                if program is None:
                    with self._count_lock:
                        self.parses += 1
                    program = AmazonStateLanguageParser.parse(definition)[0]
                    for component in components(program):
                        if isinstance(component, EvalComponent):
                            component.heap_key  # noqa: B018 -- chosen now, before any thread shares it
                    self._programs[definition] = program
        return program

    @contextmanager
    def installed(self) -> Iterator[Interpreter]:
        from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor
        from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

        interpreter = self
        inherited_init = Preprocessor.__init__

        def preprocessor_init(preprocessor: Any, *args: Any, **kwargs: Any) -> None:
            inherited_init(preprocessor, *args, **kwargs)
            preprocessor._query_language_per_scope = []  # its own, not the class's shared list

        def entrypoint(worker: Any) -> Any:
            return interpreter.program_for(worker._evaluation_details.state_machine_details.definition)

        def execution_logic(worker: Any) -> None:
            interpreter._run(worker)

        def stop(worker: Any, stop_date: datetime.datetime, error: str | None, cause: str | None) -> None:
            interpreter._stop(worker, stop_date, error, cause)

        self._patch(Preprocessor, "__init__", preprocessor_init)
        self._measure_state_size_as_aws()
        self._serialize_table_writes()
        self._patch(ExecutionWorker, "_get_evaluation_entrypoint", entrypoint)
        self._patch(ExecutionWorker, "_execution_logic", execution_logic)
        self._patch(ExecutionWorker, "stop", stop)
        if self.speedups.jsonpath_cache:
            self._cache_jsonpath()
        if self.speedups.client_cache:
            self._cache_clients()
        if self.speedups.dispatch_cache:
            self._cache_dispatch()
        try:
            yield self
        finally:
            for owner, name, original in reversed(self._patches):
                if original is _ABSENT:
                    delattr(owner, name)
                else:
                    setattr(owner, name, original)
            self._patches.clear()
            self._programs.clear()
            self._clients.clear()

    # -- one execution
    def _run(self, worker: Any) -> None:
        """moto's ``ExecutionWorker._execution_logic``, with a stop that came early and a crash handled."""
        from moto.stepfunctions.parser.api import (
            ExecutionAbortedEventDetails,
            ExecutionStartedEventDetails,
            HistoryEventExecutionDataDetails,
            HistoryEventType,
        )
        from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

        details = worker._evaluation_details
        try:
            program = worker._get_evaluation_entrypoint()
            env = worker._get_evaluation_environment()
            with self._stop_lock:
                worker.env = env
                early_stop = worker.__dict__.pop("_early_stop", None)
            env.event_manager.add_event(
                context=env.event_history_context,
                event_type=HistoryEventType.ExecutionStarted,
                event_details=_event_details(
                    executionStartedEventDetails=ExecutionStartedEventDetails(
                        input=to_json_str(details.execution_details.inpt),
                        inputDetails=HistoryEventExecutionDataDetails(truncated=False),
                        roleArn=details.aws_execution_details.role_arn,
                    )
                ),
                update_source_event_id=False,
            )
            if early_stop is None:
                program.eval(env)
            else:
                stop_date, error, cause = early_stop
                env.next_state_name = program.start_at.start_at_name  # running, so that it can stop
                env.set_stop(stop_date=stop_date, cause=cause, error=error)
                env.event_manager.add_event(
                    context=env.event_history_context,
                    event_type=HistoryEventType.ExecutionAborted,
                    event_details=_event_details(
                        executionAbortedEventDetails=ExecutionAbortedEventDetails(error=error, cause=cause)
                    ),
                )
            worker._execution_communication.terminated()
        except Exception as exc:
            with self._count_lock:
                self.crashes += 1
            LOG.error("The interpreter failed while running %s", details.execution_details.arn, exc_info=True)
            _fail(worker, exc)
        finally:
            self.ends.ended(details.execution_details.arn)

    def _stop(self, worker: Any, stop_date: datetime.datetime, error: str | None, cause: str | None) -> None:
        with self._stop_lock:
            env = worker.env
            if env is None:  # not started yet: it stops as soon as it starts (see _run)
                worker._early_stop = (stop_date, error, cause)
                return
        env.set_stop(stop_date=stop_date, cause=cause, error=error)

    # -- speed-ups
    def _patch(self, owner: Any, name: str, replacement: Any) -> None:
        self._patches.append((owner, name, owner.__dict__.get(name, _ABSENT)))
        setattr(owner, name, replacement)

    def _patch_everywhere(self, module: Any, name: str, replacement: Any) -> None:
        """Replace ``module.name`` and every loaded copy of it taken by ``from module import name``."""
        original = getattr(module, name)
        self._patch(module, name, replacement)
        for other in list(sys.modules.values()):
            if other is not module and getattr(other, "__dict__", {}).get(name) is original:
                self._patch(other, name, replacement)

    def _measure_state_size_as_aws(self) -> None:
        from moto.stepfunctions.parser import quotas

        # The modules that take the check with `from ... import`, loaded so that every copy is replaced.
        importlib.import_module("moto.stepfunctions.parser.asl.component.state.state")
        importlib.import_module("moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_lambda")
        importlib.import_module(
            "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service"
        )
        self._patch_everywhere(quotas, "is_within_size_quota", within_state_size_quota)

    def _serialize_table_writes(self) -> None:
        """DynamoDB applies each write to an item atomically (an ``ADD`` counter, a conditional
        put); moto's backend does not lock, so concurrent executions lost counts. One lock for
        every write makes the emulator's table behave as AWS's does."""
        from moto.dynamodb.models import DynamoDBBackend

        lock = threading.RLock()
        for name in ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item"):
            write = getattr(DynamoDBBackend, name)

            def locked(*args: Any, _write: Any = write, **kwargs: Any) -> Any:
                with lock:
                    return _write(*args, **kwargs)

            self._patch(DynamoDBBackend, name, functools.wraps(write)(locked))

    def _cache_jsonpath(self) -> None:
        from moto.stepfunctions.parser.asl.component.common.path import result_path
        from moto.stepfunctions.parser.asl.utils import json_path

        for module in (json_path, result_path):
            self._patch(module, "parse", functools.lru_cache(maxsize=4096)(module.parse))

    def _cache_clients(self) -> None:
        from moto.core.models import botocore_stubber
        from moto.stepfunctions.parser.asl.utils import boto_client

        create = boto_client.boto_client_for

        def client_for(region: str, service: str, state_credentials: Any = None) -> Any:
            key = (region, service, bool(botocore_stubber.enabled))
            client = self._clients.get(key)
            if client is None:
                with self._client_lock:
                    client = self._clients.get(key)
                    if client is None:
                        client = self._clients[key] = create(region, service, state_credentials)
            return client

        self._patch_everywhere(boto_client, "boto_client_for", client_for)

    def _cache_dispatch(self) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication

        find = DomainDispatcherApplication.get_backend_for_host
        found: dict[str | None, Any] = {}

        def get_backend_for_host(app: Any, host: str | None) -> Any:
            if host not in found:
                found[host] = find(app, host)
            return found[host]

        self._patch(DomainDispatcherApplication, "get_backend_for_host", get_backend_for_host)


_ABSENT = object()


def state_data_bytes(value: Any) -> int:
    """The size of a state's data as AWS measures it: its compact JSON text in UTF-8 bytes (a
    string is measured as it is)."""
    text = (
        value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    )
    return len(text.encode("utf-8"))


def within_state_size_quota(value: Any) -> bool:
    """Whether ``value`` fits in a state: ``state_data_bytes`` under 256 KiB (moto's bound,
    ``quotas.MAX_STATE_SIZE_UTF8_BYTES``, kept)."""
    from moto.stepfunctions.parser.quotas import MAX_STATE_SIZE_UTF8_BYTES

    return state_data_bytes(value) < MAX_STATE_SIZE_UTF8_BYTES


def _event_details(**details: Any) -> Any:
    """moto's ``EventDetails`` (a TypedDict whose keys mypy would count as required)."""
    from moto.stepfunctions.parser.asl.eval.event import event_detail

    return event_detail.EventDetails(**details)  # type: ignore[typeddict-item]


def _fail(worker: Any, exc: BaseException) -> None:
    """End the execution as FAILED with ``INTERPRETER_FAILED``: in its history when it has one, and always in its status."""
    from moto.stepfunctions.parser.api import ExecutionFailedEventDetails, ExecutionStatus, HistoryEventType

    cause = f"The emulator's Step Functions interpreter failed: {type(exc).__name__}: {exc}"
    failure = ExecutionFailedEventDetails(error=INTERPRETER_FAILED, cause=cause)
    env = worker.env
    if env is not None:
        try:
            env.set_error(failure)
            env.event_manager.add_event(
                context=env.event_history_context,
                event_type=HistoryEventType.ExecutionFailed,
                event_details=_event_details(executionFailedEventDetails=failure),
            )
        except Exception:
            LOG.exception("Could not record the failure in the execution's history")
    execution = getattr(worker._execution_communication, "execution", None)
    if execution is None:
        return
    execution.stop_date = datetime.datetime.now(tz=datetime.UTC)
    execution.error = INTERPRETER_FAILED
    execution.cause = cause
    execution.exec_status = ExecutionStatus.FAILED


def components(program: Any) -> Iterator[Any]:
    """Every interpreter component reachable from ``program`` (each once)."""
    from moto.stepfunctions.parser.asl.component.component import Component

    seen: set[int] = set()
    stack: list[Any] = [program]
    while stack:
        value = stack.pop()
        if id(value) in seen:
            continue
        seen.add(id(value))
        if isinstance(value, Component):
            yield value
            stack.extend(vars(value).values())
        elif isinstance(value, list | tuple | set | frozenset):
            stack.extend(value)
        elif isinstance(value, dict):
            stack.extend(value.values())


def fingerprint(program: Any) -> list[tuple[str, str, str]]:
    """Every component's attributes, as text: equal before and after executions when they keep no state."""
    rows = []
    for component in components(program):
        for name, value in sorted(vars(component).items()):
            shown = type(value).__name__ if _is_container_of_components(value) else repr(value)
            rows.append((f"{type(component).__name__}@{id(component)}", name, shown))
    return sorted(rows)


def _is_container_of_components(value: Any) -> bool:
    from moto.stepfunctions.parser.asl.component.component import Component

    if isinstance(value, Component):
        return True
    if isinstance(value, list | tuple | set | frozenset):
        return any(_is_container_of_components(v) for v in value)
    if isinstance(value, dict):
        return any(_is_container_of_components(v) for v in value.values())
    return False


WaitForEnd = Callable[[str, float], bool]
