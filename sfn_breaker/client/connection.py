"""Finding the breaker and reaching it, and AWS's errors as this package's.

A ``Connection`` is one client's way to the breaker: the boto3 session, one boto3 client per AWS
service and one ``CircuitStore`` per thread, the workflow and table named by the stack's outputs,
and the services the workflow routes. ``Connection.translated()`` turns botocore's and AWS's
errors into the errors of ``sfn_breaker.errors``, with ``raise ... from``.

Where a client goes, in order (the ``breaker`` CLI decides the same way, ``sfn_breaker.config``):

1. the ``session`` and ``endpoint_url`` given;
2. ``AWS_ENDPOINT_URL_SFN`` or ``AWS_ENDPOINT_URL``: that endpoint (boto3 reads them);
3. AWS credentials found by boto3's standard chain: AWS, in the configured region;
4. otherwise the emulator that ``breaker local up`` runs (its state file,
   ``sfn_breaker.local.state``), when it answers; with none, the first call raises
   ``ConfigurationError`` with the CLI's words (``sfn_breaker.errors.NOTHING_CONFIGURED``).

Against a custom endpoint (the emulator) and with no session given, missing credentials become
placeholder ones and a missing region ``us-east-1``, so that the emulator needs no
configuration; against AWS nothing is made up. Against a custom endpoint the client also turns
off botocore's host prefix for ``StartSyncExecution`` (``sync-``), which only AWS's own
endpoints resolve.

``StartSyncExecution`` is never retried here: the breaker retries the service itself, and a
blind retry of a call that may have reached the service could call it twice.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, NoReturn
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

from sfn_breaker.contract import (
    DEFAULT_STACK_NAME,
    EMULATOR_ACCESS_KEY,
    EMULATOR_REGION,
    EMULATOR_SECRET_KEY,
    EXPRESS_MAX_SECONDS,
    STATE_MACHINE_OUTPUT,
    TABLE_OUTPUT,
)
from sfn_breaker.core.store import CircuitStore, StoreError
from sfn_breaker.errors import NOTHING_CONFIGURED, BreakerError, ConfigurationError, StackNotFoundError
from sfn_breaker.local.state import EmulatorState, default_state_file, emulator_health

#: An Express execution lasts at most 5 minutes; wait a little longer for its answer.
SYNC_READ_TIMEOUT_SECONDS = EXPRESS_MAX_SECONDS + 20
DEFAULT_MAX_WORKERS = 10
#: Where boto3 reads a custom Step Functions endpoint from, the service's own variable first.
ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_SFN", "AWS_ENDPOINT_URL")
_AWS_HOST_SUFFIXES = (".amazonaws.com", ".amazonaws.com.cn", ".api.aws", ".c2s.ic.gov", ".sc2s.sgov.gov")
_NO_CREDENTIALS = (
    "No AWS credentials found: configure them (aws configure, AWS_PROFILE, ...), "
    "or start the local emulator with `breaker local up`."
)
_NO_REGION = (
    "No AWS region is configured: set AWS_DEFAULT_REGION (boto3 does not read AWS_REGION) or run `aws configure`."
)
_BAD_CREDENTIALS = frozenset(
    {"UnrecognizedClientException", "InvalidClientTokenId", "ExpiredToken", "ExpiredTokenException"}
)


@dataclass(frozen=True, kw_only=True)
class ConnectionOptions:
    """What a client is built from: the keyword arguments of ``BaseBreakerClient``, where each is documented."""

    state_machine_arn: str | None = None
    table_name: str | None = None
    stack_name: str = DEFAULT_STACK_NAME
    session: boto3.Session | None = None
    endpoint_url: str | None = None
    clock: Callable[[], float] = time.time
    max_workers: int = DEFAULT_MAX_WORKERS

    def keywords(self) -> dict[str, Any]:
        """These options as keyword arguments, to build another client like this one."""
        return {field.name: getattr(self, field.name) for field in fields(self)}


class Connection:
    """One client's way to the breaker. Safe to share between threads."""

    def __init__(self, options: ConnectionOptions) -> None:
        self.stack_name = options.stack_name
        self.endpoint_url = options.endpoint_url
        self._pool_size = max(1, options.max_workers)
        self._state_machine_arn = options.state_machine_arn
        self._table_name = options.table_name
        self._lock = threading.RLock()
        self._clients: dict[str, Any] = {}
        self._thread = threading.local()
        self._registered: dict[str, int] | None = None
        self._registered_known = False
        self._session_ready = options.session is not None  # a session given is used as it is
        self._nothing_found = False  # no session, endpoint, credentials or running emulator
        with self.translated():
            self.session = options.session or boto3.Session()
            nothing_configured = options.session is None and options.endpoint_url is None and not configured_endpoint()
            if nothing_configured and self.session.get_credentials() is None:
                self._use_running_emulator()

    def _use_running_emulator(self) -> None:
        """No session, endpoint or credentials: the emulator ``breaker local up`` runs, if any."""
        state = running_emulator()
        if state is None:
            self._nothing_found = True  # the first AWS call says so, in the CLI's words
            return
        self.endpoint_url = state.endpoint_url
        self.session = boto3.Session(
            aws_access_key_id=EMULATOR_ACCESS_KEY, aws_secret_access_key=EMULATOR_SECRET_KEY, region_name=state.region
        )
        self._session_ready = True

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

    def registered_services(self) -> tuple[str, ...] | None:
        """The services the workflow routes, read once from its definition (``None`` when it cannot be read)."""
        registered = self._registered_settings()
        return None if registered is None else tuple(sorted(registered))

    def read_shards(self, service: str) -> int | None:
        """How many items the workflow reads ``service``'s circuit from (its ``readShards``: 1 for a
        service that is not sharded or not registered), from the workflow's definition; ``None``
        when the definition cannot be read."""
        registered = self._registered_settings()
        return None if registered is None else registered.get(service, 1)

    def _registered_settings(self) -> dict[str, int] | None:
        with self._lock:
            if not self._registered_known:
                self._registered = self._read_registered_services()
                self._registered_known = True
            return self._registered

    # ------------------------------------------------------------------ AWS clients

    def client(self, name: str) -> Any:
        """The boto3 client for AWS service ``name``, made once and shared by every thread."""
        with self._lock:
            client = self._clients.get(name)
            if client is None:
                client = self._clients[name] = self._make_client(name)
            return client

    def store(self) -> CircuitStore:
        """The CircuitStatus table, through this thread's own ``CircuitStore``."""
        store: CircuitStore | None = getattr(self._thread, "store", None)
        if store is None:
            table = self.table_name
            with self._lock:  # a boto3 session is not safe to use from several threads at once
                resource = self._ready_session().resource(
                    "dynamodb", endpoint_url=self.endpoint_url, config=Config(max_pool_connections=self._pool_size)
                )
            store = self._thread.store = CircuitStore(table, dynamodb_resource=resource)
        return store

    def _make_client(self, name: str) -> Any:
        config = Config(max_pool_connections=self._pool_size)
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

    def _ready_session(self) -> boto3.Session:
        """The session, with placeholders for what an emulator does not need (see the module docstring)."""
        with self._lock:
            if not self._session_ready:
                self._session_ready = True
                custom = self.endpoint_url or configured_endpoint()
                if custom and not _is_aws_endpoint(custom):
                    has_credentials = self.session.get_credentials() is not None
                    self.session = emulator_session(self.session, has_credentials=has_credentials)
            return self.session

    def _stack_output(self, key: str) -> str:
        with self._lock:
            if key == STATE_MACHINE_OUTPUT and self._state_machine_arn is not None:
                return self._state_machine_arn
            if key == TABLE_OUTPUT and self._table_name is not None:
                return self._table_name
            with self.translated():
                try:
                    stacks = self.client("cloudformation").describe_stacks(StackName=self.stack_name)["Stacks"]
                except ClientError as exc:
                    if "does not exist" in exc.response.get("Error", {}).get("Message", ""):
                        raise StackNotFoundError(self._not_deployed()) from exc
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

    def _not_deployed(self) -> str:
        """Why the stack is not there, and what deploys it: ``cdk deploy`` on AWS, ``breaker local up``
        on the emulator (which runs one stack: the one its health answer names)."""
        where = self._where()
        if not self._custom_endpoint():
            return (
                f"Stack {self.stack_name} is not deployed {where}: deploy it with `cdk deploy`, "
                "or start the local emulator with `breaker local up`."
            )
        client = self._clients.get("cloudformation")
        health = emulator_health(str(client.meta.endpoint_url if client else self.endpoint_url), timeout=2.0)
        if health is None:  # another emulator, or a stack elsewhere
            return f"Stack {self.stack_name} is not deployed {where}: deploy it with `cdk deploy`."
        return (
            f"Stack {self.stack_name} is not deployed {where}, where the local emulator runs stack "
            f"{health.get('stackName')}: to run yours, `breaker local down`, then `breaker local up` in your CDK app's "
            f'folder (its cdk.json), or `breaker local up --app "python3 app.py" --stack {self.stack_name}`.'
        )

    def _read_registered_services(self) -> dict[str, int] | None:
        """Each service the workflow routes, and its ``readShards`` (from its ``Configure`` state)."""
        machine = self.state_machine_arn
        try:
            with self.translated():
                described = self.client("stepfunctions").describe_state_machine(stateMachineArn=machine)
        except StackNotFoundError:
            raise
        except BreakerError:
            return None  # no permission to describe it: the workflow still rejects unknown services
        try:
            states = json.loads(described["definition"])["States"]
            choices = states["RouteService"]["Choices"]
            routes = {
                str(c["StringEquals"]): str(c.get("Next", "")) for c in choices if c.get("Variable") == "$.ServiceName"
            }
            return {name: _read_shards(states.get(state)) for name, state in routes.items()}
        except (KeyError, TypeError, ValueError, AttributeError):
            return None

    # ------------------------------------------------------------------ errors

    @contextmanager
    def translated(self) -> Iterator[None]:
        """AWS's and botocore's errors, as the errors of ``sfn_breaker.errors``."""
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
        except (NoCredentialsError, PartialCredentialsError, CredentialRetrievalError, NoRegionError) as exc:
            # The message says all there is to say (botocore's own error adds a screenful of
            # traceback and nothing to do): raised without its cause.
            if self._nothing_found:  # nothing at all to go on: the CLI's words for that case
                raise ConfigurationError(NOTHING_CONFIGURED) from None
            if isinstance(exc, NoRegionError):
                raise ConfigurationError(_NO_REGION) from None
            if isinstance(exc, NoCredentialsError):
                raise ConfigurationError(_NO_CREDENTIALS) from None
            # Partial credentials, or a credential provider's failure: botocore's error says which.
            raise ConfigurationError(_NO_CREDENTIALS) from exc
        except ProfileNotFound as exc:
            raise ConfigurationError(f"{exc}: check AWS_PROFILE.") from exc
        except ConnectionError as exc:
            hint = " Is the local emulator running? (`breaker local up`)" if self._custom_endpoint() else ""
            raise ConfigurationError(f"Could not reach the breaker: {exc}.{hint}") from exc
        except BotoCoreError as exc:
            raise BreakerError(str(exc)) from exc
        except ValueError as exc:
            if not str(exc).startswith("Invalid endpoint"):  # botocore's word for an endpoint that is no URL
                raise
            raise ConfigurationError(
                f"{exc}: an endpoint is a URL such as http://127.0.0.1:4566 (check AWS_ENDPOINT_URL)."
            ) from exc

    def _raise_client_error(self, exc: ClientError) -> NoReturn:
        error = exc.response.get("Error", {})
        code, message = str(error.get("Code", "")), str(error.get("Message", ""))
        if code in ("StateMachineDoesNotExist", "ResourceNotFoundException"):
            raise StackNotFoundError(
                f"{message or code} {self._where()}: is stack {self.stack_name} deployed there?"
            ) from exc
        if code in _BAD_CREDENTIALS:
            raise ConfigurationError(f"AWS rejected the credentials ({code}): {message}") from exc
        raise BreakerError(f"{code}: {message}" if message else code or str(exc)) from exc

    def _where(self) -> str:
        client = self._clients.get("cloudformation") or self._clients.get("stepfunctions")
        endpoint = self.endpoint_url or (client.meta.endpoint_url if client is not None else None)
        if endpoint and not _is_aws_endpoint(endpoint):
            return f"at {endpoint}"
        return f"in {self.session.region_name or '(no region)'}"

    def _custom_endpoint(self) -> bool:
        client = self._clients.get("stepfunctions") or self._clients.get("cloudformation")
        endpoint = client.meta.endpoint_url if client is not None else self.endpoint_url
        return endpoint is not None and not _is_aws_endpoint(endpoint)


def _read_shards(state: Any) -> int:
    """A service's ``readShards`` from its ``Configure <service>`` state (1 when it says none)."""
    result = state.get("Result", {}) if isinstance(state, dict) else {}
    shards = result.get("ReadShards", 1) if isinstance(result, dict) else 1
    return shards if isinstance(shards, int) and shards >= 1 else 1


def _is_aws_endpoint(url: str | None) -> bool:
    host = urlparse(url or "").hostname or ""
    return host.endswith(_AWS_HOST_SUFFIXES)


def running_emulator(state_file: Path | None = None) -> EmulatorState | None:
    """The emulator ``breaker local up`` started, when its state file names one that answers."""
    state = EmulatorState.read(state_file or default_state_file())
    return state if state is not None and state.is_alive() else None


def configured_endpoint() -> str | None:
    """The Step Functions endpoint set in the environment (``ENDPOINT_VARIABLES``), if any."""
    return next((os.environ[name] for name in ENDPOINT_VARIABLES if os.environ.get(name)), None)


def emulator_session(session: boto3.Session, *, has_credentials: bool, profile: str | None = None) -> boto3.Session:
    """``session``, for an emulator endpoint: placeholder credentials when it has none, and the
    emulator's region when it has none. Against AWS nothing is made up: do not call this there."""
    if not has_credentials:
        return boto3.Session(
            aws_access_key_id=EMULATOR_ACCESS_KEY,
            aws_secret_access_key=EMULATOR_SECRET_KEY,
            region_name=session.region_name or EMULATOR_REGION,
        )
    if session.region_name is None:
        return boto3.Session(profile_name=profile, region_name=EMULATOR_REGION)
    return session
