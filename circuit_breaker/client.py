"""Call services through the breaker, and read and operate its circuits, from Python.

::

    client = BreakerClient()                       # finds the CircuitBreaker stack's outputs
    try:
        receipt = client.call("payment", {"amount": 5})
    except CircuitOpenError as exc:                # failed fast: the service was not called
        retry_at = exc.retry_after                 # None: held open by an operator
    except ServiceCallError as exc:                # the service failed on every attempt
        ...exc.error, exc.cause, exc.timed_out

``call`` uses ``StartSyncExecution``, the way callers of an Express workflow get its result,
against AWS and against the local emulator alike. The operators' methods (``status``, ``list``,
``open``, ``close``, ``force_closed``) read and write the CircuitStatus table with
``circuit_breaker.core.store.CircuitStore``: the same items the README documents.

Credentials, region and endpoint come from boto3's standard resolution (profiles,
``AWS_REGION``, ``AWS_ENDPOINT_URL``, ...), or from the ``session`` and ``endpoint_url`` given.
Against a custom endpoint (the emulator) the client turns off botocore's host prefix for
``StartSyncExecution`` (``sync-``), which only AWS's own endpoints resolve.

**The async client.** ``AsyncBreakerClient`` has the same methods as coroutines. It runs the
sync client's calls on its own bounded thread pool (``loop.run_in_executor``), so the event
loop never waits on the network; the pool's size bounds how many calls run at once, and the
HTTP connection pool is sized to match. ``aiobotocore`` would be the other way, but every
release pins botocore to a narrow range (3.10 needs botocore < 1.43.118; this project runs
boto3/botocore 1.44), and the table writes would still need the sync ``CircuitStore``. One
consequence: cancelling an awaiting task does not stop a call already running on the pool; its
thread finishes it and the result is dropped.

``StartSyncExecution`` is never retried by the client: the breaker retries the service itself,
and a blind retry of a call that may have reached the service could call it twice.
"""

from __future__ import annotations

import asyncio
import builtins
import functools
import json
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar
from urllib.parse import urlparse

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    CredentialRetrievalError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)

from circuit_breaker.contract import (
    DEFAULT_STACK_NAME,
    EMULATOR_ACCESS_KEY,
    EMULATOR_REGION,
    EMULATOR_SECRET_KEY,
    EXPRESS_MAX_SECONDS,
    STATE_MACHINE_OUTPUT,
    TABLE_OUTPUT,
)
from circuit_breaker.core import rules
from circuit_breaker.core.model import CircuitState, CircuitView
from circuit_breaker.core.store import CircuitStore, StoreError
from circuit_breaker.errors import (
    BreakerError,
    CircuitOpenError,
    CircuitStoreUnavailableError,
    ConfigurationError,
    InvalidRequestError,
    ServiceCallError,
    StackNotFoundError,
)

__all__ = [
    "AsyncBreakerClient",
    "BreakerClient",
    "BreakerError",
    "CircuitChange",
    "CircuitOpenError",
    "CircuitState",
    "CircuitStoreUnavailableError",
    "CircuitView",
    "ConfigurationError",
    "InvalidRequestError",
    "ServiceCallError",
    "StackNotFoundError",
    "result_from",
]

#: An Express execution lasts at most 5 minutes; wait a little longer for its answer.
SYNC_READ_TIMEOUT_SECONDS = EXPRESS_MAX_SECONDS + 20
DEFAULT_MAX_WORKERS = 10
_ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_SFN", "AWS_ENDPOINT_URL")
_AWS_HOST_SUFFIXES = (".amazonaws.com", ".amazonaws.com.cn", ".api.aws", ".c2s.ic.gov", ".sc2s.sgov.gov")
_REQUEST_ERRORS = frozenset({"InvalidInput", "UnknownService"})
#: Task timeouts surface as States.Timeout; the workflow may name its own final timeout error.
_TIMEOUT_ERRORS = frozenset({"States.Timeout", "ServiceTimeout"})
_OPEN_UNTIL = re.compile(r" until (\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z)")

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True)
class CircuitChange:
    """What an operator's write did to one circuit."""

    service: str
    before: CircuitView
    after: CircuitView

    @property
    def changed(self) -> bool:
        return (self.before.state, self.before.open_until) != (self.after.state, self.after.open_until)


class BreakerClient:
    """The breaker, seen from a caller and an operator. Safe to share between threads."""

    def __init__(
        self,
        *,
        state_machine_arn: str | None = None,
        table_name: str | None = None,
        stack_name: str = DEFAULT_STACK_NAME,
        session: boto3.Session | None = None,
        endpoint_url: str | None = None,
        clock: Callable[[], float] = time.time,
        max_pool_connections: int = DEFAULT_MAX_WORKERS,
    ) -> None:
        """
        :param state_machine_arn: the breaker's workflow; by default the stack's ``StateMachineArn`` output.
        :param table_name: the CircuitStatus table; by default the stack's ``TableName`` output.
        :param stack_name: the stack whose outputs are read when an ARN or name is not given.
        :param session: the boto3 session (credentials, region); by default a new standard one.
        :param endpoint_url: an endpoint for every AWS call (the local emulator); by default
            boto3's resolution, which honours ``AWS_ENDPOINT_URL``.
        :param clock: the time used to read circuits and to compute ``open(for_seconds=...)``.
        """
        self.stack_name = stack_name
        self.endpoint_url = endpoint_url
        self._clock = clock
        self._max_pool = max(1, max_pool_connections)
        self._state_machine_arn = state_machine_arn
        self._table_name = table_name
        self._lock = threading.RLock()
        self._clients: dict[str, Any] = {}
        self._thread = threading.local()
        self._registered: tuple[str, ...] | None = None
        self._registered_known = False
        self._session_given = session is not None
        self._session_ready = self._session_given
        with self._translated():
            self.session = session or boto3.Session()

    # ------------------------------------------------------------------ where the breaker is

    @property
    def state_machine_arn(self) -> str:
        if self._state_machine_arn is None:
            self._state_machine_arn = self._stack_output(STATE_MACHINE_OUTPUT)
        return self._state_machine_arn

    @property
    def table_name(self) -> str:
        if self._table_name is None:
            self._table_name = self._stack_output(TABLE_OUTPUT)
        return self._table_name

    def registered_services(self) -> builtins.list[str] | None:
        """The services the workflow routes, read from its definition (``None`` when it cannot be read)."""
        with self._lock:
            if not self._registered_known:
                self._registered = self._read_registered_services()
                self._registered_known = True
            return None if self._registered is None else builtins.list(self._registered)

    # ------------------------------------------------------------------ calling a service

    def call(self, service: str, payload: Mapping[str, Any] | None = None) -> Any:
        """Call ``service`` through the breaker and return its response payload.

        :raises CircuitOpenError: the circuit is open (or half-open with its probe in flight);
            the service was not called.
        :raises CircuitStoreUnavailableError: the circuit could not be read and the service's
            store-fault policy is to fail fast; the service was not called.
        :raises ServiceCallError: the service failed (or timed out) on every attempt.
        :raises InvalidRequestError: unknown service, or a payload that is not a JSON object.
        :raises ConfigurationError: the breaker cannot be reached.
        """
        request: dict[str, Any] = {"ServiceName": service}
        if payload is not None:
            request["Payload"] = dict(payload) if isinstance(payload, Mapping) else payload
        try:
            body = json.dumps(request)
        except (TypeError, ValueError) as exc:
            raise InvalidRequestError("InvalidInput", f"the payload is not JSON: {exc}", service=service) from exc
        machine = self.state_machine_arn
        with self._translated():
            response = self._client("stepfunctions").start_sync_execution(stateMachineArn=machine, input=body)
        return result_from(service, response)

    # ------------------------------------------------------------------ reading circuits

    def status(self, service: str) -> CircuitView:
        """``service``'s circuit as a caller would find it now."""
        with self._translated():
            item = self._store().get(service)
        if item is None:
            self._require_registered(service)
        return rules.view(service, item, self._clock())

    def list(self) -> builtins.list[CircuitView]:
        """Every registered service's circuit, and any other circuit the table holds, by name."""
        with self._translated():
            items = {str(item["ServiceName"]): item for item in self._store().scan()}
        names = sorted(set(self.registered_services() or ()) | set(items))
        now = self._clock()
        return [rules.view(name, items.get(name), now) for name in names]

    # ------------------------------------------------------------------ operating circuits

    def open(
        self,
        service: str,
        *,
        until: datetime | None = None,
        for_seconds: int | None = None,
        reason: str = "",
    ) -> CircuitChange:
        """Hold ``service``'s circuit open: until ``until``, for ``for_seconds``, or (neither) until
        further notice. Calls fail fast with ``CircuitOpen`` meanwhile; ``close`` ends it early."""
        if until is not None and for_seconds is not None:
            raise InvalidRequestError("InvalidInput", "give either until or for_seconds, not both", service=service)
        now = self._clock()
        expiry: int | None = None
        if for_seconds is not None:
            if for_seconds <= 0:
                raise InvalidRequestError("InvalidInput", f"for_seconds must be positive, not {for_seconds}")
            expiry = math.ceil(now) + int(for_seconds)
        elif until is not None:
            if until.tzinfo is None:
                raise InvalidRequestError("InvalidInput", f"until must carry a time zone: {until.isoformat()}")
            expiry = math.ceil(until.timestamp())
            if expiry <= now:
                raise InvalidRequestError("InvalidInput", f"until is in the past: {until.isoformat()}")
        self._require_registered(service)
        with self._translated():
            store = self._store()
            before = rules.view(service, store.get(service), now)
            item = store.force_open(service, until=expiry, now=now, reason=reason)
        return CircuitChange(service, before, rules.view(service, item, now))

    def close(self, service: str) -> CircuitChange:
        """Close ``service``'s circuit now, whether it opened by itself or was forced open or closed."""
        with self._translated():
            old = self._store().close(service)
        now = self._clock()
        return CircuitChange(service, rules.view(service, old, now), rules.view(service, None, now))

    def force_closed(self, service: str, reason: str = "") -> CircuitChange:
        """Always call ``service`` and never open its circuit, until ``close`` (or ``open``)."""
        self._require_registered(service)
        now = self._clock()
        with self._translated():
            store = self._store()
            before = rules.view(service, store.get(service), now)
            item = store.force_closed(service, now=now, reason=reason)
        return CircuitChange(service, before, rules.view(service, item, now))

    # ------------------------------------------------------------------ internals

    def _client(self, name: str) -> Any:
        with self._lock:
            client = self._clients.get(name)
            if client is None:
                client = self._clients[name] = self._make_client(name)
            return client

    def _make_client(self, name: str) -> Any:
        config = Config(max_pool_connections=self._max_pool)
        if name == "stepfunctions":
            config = config.merge(
                Config(read_timeout=SYNC_READ_TIMEOUT_SECONDS, retries={"mode": "standard", "total_max_attempts": 1})
            )
        session: Any = self._ready_session()  # boto3-stubs types client() by literal service name
        client = session.client(name, endpoint_url=self.endpoint_url, config=config)
        if name == "stepfunctions" and not _is_aws_endpoint(client.meta.endpoint_url):
            client = session.client(
                name, endpoint_url=self.endpoint_url, config=config.merge(Config(inject_host_prefix=False))
            )
        return client

    def _store(self) -> CircuitStore:
        store: CircuitStore | None = getattr(self._thread, "store", None)
        if store is None:
            table = self.table_name
            with self._lock:  # a boto3 session is not safe to use from several threads at once
                resource = self._ready_session().resource(
                    "dynamodb", endpoint_url=self.endpoint_url, config=Config(max_pool_connections=self._max_pool)
                )
            store = self._thread.store = CircuitStore(table, dynamodb_resource=resource)
        return store

    def _ready_session(self) -> boto3.Session:
        """The session, with placeholders for what an emulator does not need.

        Against a custom endpoint (``endpoint_url`` or ``AWS_ENDPOINT_URL``) and with no session
        given, missing credentials become placeholder ones and a missing region ``us-east-1``,
        so that the emulator needs no configuration. Against AWS nothing is made up.
        """
        with self._lock:
            if not self._session_ready:
                self._session_ready = True
                custom = self.endpoint_url or next(
                    (os.environ[v] for v in _ENDPOINT_VARIABLES if os.environ.get(v)), None
                )
                if custom and not _is_aws_endpoint(custom):
                    region = self.session.region_name or EMULATOR_REGION
                    if self.session.get_credentials() is None:
                        self.session = boto3.Session(
                            aws_access_key_id=EMULATOR_ACCESS_KEY,
                            aws_secret_access_key=EMULATOR_SECRET_KEY,
                            region_name=region,
                        )
                    elif self.session.region_name is None:
                        self.session = boto3.Session(region_name=region)
            return self.session

    def _stack_output(self, key: str) -> str:
        with self._lock:
            if key == STATE_MACHINE_OUTPUT and self._state_machine_arn is not None:
                return self._state_machine_arn
            if key == TABLE_OUTPUT and self._table_name is not None:
                return self._table_name
            with self._translated():
                try:
                    stacks = self._client("cloudformation").describe_stacks(StackName=self.stack_name)["Stacks"]
                except ClientError as exc:
                    if "does not exist" in exc.response.get("Error", {}).get("Message", ""):
                        hint = (
                            "" if self._custom_endpoint() else ", or start the local emulator with `breaker local up`"
                        )
                        raise StackNotFoundError(
                            f"Stack {self.stack_name} is not deployed {self._where()}: deploy it with `cdk deploy`{hint}."
                        ) from exc
                    raise
            outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
            missing = [k for k in (STATE_MACHINE_OUTPUT, TABLE_OUTPUT) if k not in outputs]
            if missing:
                raise StackNotFoundError(
                    f"Stack {self.stack_name} has no output {', '.join(missing)}: is it the circuit breaker's stack?"
                )
            self._state_machine_arn = self._state_machine_arn or outputs[STATE_MACHINE_OUTPUT]
            self._table_name = self._table_name or outputs[TABLE_OUTPUT]
            return outputs[key]

    def _read_registered_services(self) -> tuple[str, ...] | None:
        machine = self.state_machine_arn
        try:
            with self._translated():
                described = self._client("stepfunctions").describe_state_machine(stateMachineArn=machine)
        except StackNotFoundError:
            raise
        except BreakerError:
            return None  # no permission to describe it: the workflow still rejects unknown services
        try:
            choices = json.loads(described["definition"])["States"]["RouteService"]["Choices"]
            return tuple(sorted(str(c["StringEquals"]) for c in choices if "StringEquals" in c))
        except (KeyError, TypeError, ValueError):
            return None

    def _require_registered(self, service: str) -> None:
        registered = self.registered_services()
        if registered is not None and service not in registered:
            raise InvalidRequestError(
                "UnknownService",
                f"No service named {service} is registered with this circuit breaker. "
                f"Registered services: {', '.join(registered) or 'none'}.",
                service=service,
            )

    def _where(self) -> str:
        client = self._clients.get("cloudformation") or self._clients.get("stepfunctions")
        endpoint = self.endpoint_url or (client.meta.endpoint_url if client is not None else None)
        if endpoint and not _is_aws_endpoint(endpoint):
            return f"at {endpoint}"
        return f"in {self.session.region_name or '(no region)'}"

    @contextmanager
    def _translated(self) -> Iterator[None]:
        """AWS's and botocore's errors, as the errors this module documents."""
        try:
            yield
        except BreakerError:
            raise
        except StoreError as exc:
            cause = exc.__cause__
            if isinstance(cause, ClientError):
                self._raise_client_error(cause)
            raise BreakerError(str(exc)) from exc
        except ClientError as exc:
            self._raise_client_error(exc)
        except (NoCredentialsError, PartialCredentialsError, CredentialRetrievalError) as exc:
            raise ConfigurationError(
                "No AWS credentials found: configure them (aws configure, AWS_PROFILE, ...), "
                "or start the local emulator with `breaker local up`."
            ) from exc
        except NoRegionError as exc:
            raise ConfigurationError("No AWS region is configured: set AWS_REGION or run `aws configure`.") from exc
        except ProfileNotFound as exc:
            raise ConfigurationError(f"{exc}: check AWS_PROFILE.") from exc
        except ConnectionError as exc:
            hint = " Is the local emulator running? (`breaker local up`)" if self._custom_endpoint() else ""
            raise ConfigurationError(f"Could not reach the breaker: {exc}.{hint}") from exc
        except BotoCoreError as exc:
            raise BreakerError(str(exc)) from exc

    def _raise_client_error(self, exc: ClientError) -> None:
        error = exc.response.get("Error", {})
        code, message = str(error.get("Code", "")), str(error.get("Message", ""))
        if code in ("StateMachineDoesNotExist", "ResourceNotFoundException"):
            raise StackNotFoundError(
                f"{message or code} {self._where()}: is stack {self.stack_name} deployed there?"
            ) from exc
        if code in ("UnrecognizedClientException", "InvalidClientTokenId", "ExpiredToken", "ExpiredTokenException"):
            raise ConfigurationError(f"AWS rejected the credentials ({code}): {message}") from exc
        raise BreakerError(f"{code}: {message}" if message else code or str(exc)) from exc

    def _custom_endpoint(self) -> bool:
        client = self._clients.get("stepfunctions") or self._clients.get("cloudformation")
        endpoint = client.meta.endpoint_url if client is not None else self.endpoint_url
        return endpoint is not None and not _is_aws_endpoint(endpoint)


def result_from(service: str, response: Mapping[str, Any]) -> Any:
    """The service's response from a ``StartSyncExecution`` response, or the error it stands for."""
    status = response.get("status")
    execution_arn = response.get("executionArn")
    if status == "SUCCEEDED":
        output = response.get("output")
        return None if output is None else json.loads(output)
    error = str(response.get("error") or ("States.Timeout" if status == "TIMED_OUT" else "States.Runtime"))
    cause = response.get("cause")
    if error == "CircuitOpen":
        text = cause or f"Circuit open for service {service}"
        raise CircuitOpenError(service, retry_after=_retry_after(text), cause=text, execution_arn=execution_arn)
    if error == "CircuitStoreUnavailable":
        text = cause or f"The circuit of service {service} could not be read: the service was not called."
        raise CircuitStoreUnavailableError(service, cause=text, execution_arn=execution_arn)
    if error in _REQUEST_ERRORS:
        raise InvalidRequestError(error, cause or error, service=service)
    timed_out = status == "TIMED_OUT" or error in _TIMEOUT_ERRORS
    raise ServiceCallError(service, error=error, cause=cause, timed_out=timed_out, execution_arn=execution_arn)


def _retry_after(cause: str) -> datetime | None:
    """When an open circuit's cause says it closes; ``None`` when it is held open until further notice."""
    match = _OPEN_UNTIL.search(cause)
    if match is None:
        return None
    return datetime.fromisoformat(match.group(1)).astimezone(UTC)


def _is_aws_endpoint(url: str | None) -> bool:
    host = urlparse(url or "").hostname or ""
    return host.endswith(_AWS_HOST_SUFFIXES)


class AsyncBreakerClient:
    """``BreakerClient`` for asyncio: the same methods, as coroutines that never block the loop.

    Every call runs on this client's own thread pool of ``max_workers`` threads (see the module
    docstring). Use it as ``async with AsyncBreakerClient() as client:``, or call ``aclose()``.
    """

    def __init__(
        self,
        *,
        state_machine_arn: str | None = None,
        table_name: str | None = None,
        stack_name: str = DEFAULT_STACK_NAME,
        session: boto3.Session | None = None,
        endpoint_url: str | None = None,
        clock: Callable[[], float] = time.time,
        max_workers: int = DEFAULT_MAX_WORKERS,
    ) -> None:
        self.sync = BreakerClient(
            state_machine_arn=state_machine_arn,
            table_name=table_name,
            stack_name=stack_name,
            session=session,
            endpoint_url=endpoint_url,
            clock=clock,
            max_pool_connections=max_workers,
        )
        self.max_workers = max_workers
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="breaker-client")

    async def _run(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(function, *args, **kwargs))

    async def call(self, service: str, payload: Mapping[str, Any] | None = None) -> Any:
        return await self._run(self.sync.call, service, payload)

    async def status(self, service: str) -> CircuitView:
        return await self._run(self.sync.status, service)

    async def list(self) -> builtins.list[CircuitView]:
        return await self._run(self.sync.list)

    async def registered_services(self) -> builtins.list[str] | None:
        return await self._run(self.sync.registered_services)

    async def open(
        self,
        service: str,
        *,
        until: datetime | None = None,
        for_seconds: int | None = None,
        reason: str = "",
    ) -> CircuitChange:
        return await self._run(self.sync.open, service, until=until, for_seconds=for_seconds, reason=reason)

    async def close(self, service: str) -> CircuitChange:
        return await self._run(self.sync.close, service)

    async def force_closed(self, service: str, reason: str = "") -> CircuitChange:
        return await self._run(self.sync.force_closed, service, reason)

    async def aclose(self) -> None:
        """Stop the thread pool (calls still running finish on their threads)."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def __aenter__(self) -> AsyncBreakerClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
