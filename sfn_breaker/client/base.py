"""What the sync and the async client share: one constructor, and the settings it takes.

The keyword arguments are declared and documented once, here, and kept as ``ConnectionOptions``;
each client sets up how it runs its calls in ``_connect`` (the sync client a ``Connection``, the
async client a sync client and a thread pool to run it on). hynek/stamina's
``BaseRetryingCaller`` does the same for its sync and async callers.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable

import boto3

from sfn_breaker.client.connection import DEFAULT_MAX_WORKERS, ConnectionOptions
from sfn_breaker.client.memory import DEFAULT_REMEMBER_OPEN_SECONDS
from sfn_breaker.contract import DEFAULT_STACK_NAME


class BaseBreakerClient(ABC):
    """A client of the breaker: where it is, how to reach it, and what time it is."""

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
        remember_open_seconds: float = DEFAULT_REMEMBER_OPEN_SECONDS,
    ) -> None:
        """
        :param state_machine_arn: the breaker's workflow; by default the stack's ``StateMachineArn`` output.
        :param table_name: the CircuitStatus table; by default the stack's ``TableName`` output.
        :param stack_name: the stack whose outputs are read when an ARN or name is not given.
        :param session: the boto3 session (credentials, region); by default a new standard one.
        :param endpoint_url: an endpoint for every AWS call (the local emulator); by default
            boto3's resolution, which honours ``AWS_ENDPOINT_URL``.
        :param clock: the time used to read circuits and to compute ``force_open(for_seconds=...)``.
        :param max_workers: how many calls are expected at once: every AWS client keeps that many
            HTTP connections (for the threads that share a sync client), and the async client runs
            its calls on that many threads.
        :param remember_open_seconds: after a ``CircuitOpen`` answer for a service, fail its calls
            fast in this client, without starting an execution, until the earlier of the
            circuit's retry time and this many seconds (``sfn_breaker.client.memory``); 0
            turns it off. Reading or writing the circuit through this client forgets it.
        """
        if remember_open_seconds < 0:
            raise ValueError(f"remember_open_seconds must be 0 (off) or more, not {remember_open_seconds}")
        self.remember_open_seconds = float(remember_open_seconds)
        self.options = ConnectionOptions(
            state_machine_arn=state_machine_arn,
            table_name=table_name,
            stack_name=stack_name,
            session=session,
            endpoint_url=endpoint_url,
            clock=clock,
            max_workers=max_workers,
        )
        self._connect()

    @abstractmethod
    def _connect(self) -> None:
        """Set up, from ``self.options``, what this client runs its calls with."""

    @property
    def stack_name(self) -> str:
        return self.options.stack_name

    @property
    def endpoint_url(self) -> str | None:
        return self.options.endpoint_url

    @property
    def max_workers(self) -> int:
        return self.options.max_workers
