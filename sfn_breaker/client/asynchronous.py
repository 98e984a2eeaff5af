"""The async client: ``BreakerClient``'s methods as coroutines that never block the event loop.

``AsyncBreakerClient`` runs the sync client's calls on its own bounded thread pool
(``loop.run_in_executor``), so the event loop never waits on the network; the pool's size
(``max_workers``) bounds how many calls run at once, and the HTTP connection pool is sized to
match. ``aiobotocore`` would be the other way, but every release pins botocore to a narrow range
(3.10 needs botocore < 1.43.118; this project runs boto3/botocore 1.44), and the table writes
would still need the sync ``CircuitStore``. One consequence: cancelling an awaiting task does not
stop a call already running on the pool; its thread finishes it and the result is dropped.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, ParamSpec, TypeVar

from sfn_breaker.client.base import BaseBreakerClient
from sfn_breaker.client.sync import BreakerClient, CircuitChange, CircuitReport, ShardRepair

P = ParamSpec("P")
T = TypeVar("T")


class AsyncBreakerClient(BaseBreakerClient):
    """``BreakerClient`` for asyncio: the same methods, as coroutines that never block the loop.

    Built with the same keyword arguments as ``BreakerClient``. Every call runs ``sync``, a
    ``BreakerClient``, on this client's own thread pool of ``max_workers`` threads. Use it as
    ``async with AsyncBreakerClient() as client:``, or call ``aclose()``.
    """

    def _connect(self) -> None:
        self.sync = BreakerClient(**self.options.keywords(), remember_open_seconds=self.remember_open_seconds)
        self.open_circuits = self.sync.open_circuits
        """The sync client's memory of open circuits, consulted here on the loop before a call
        goes to the pool: a remembered open circuit fails fast without a thread hop."""
        self._executor = ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix="breaker-client")

    async def _run(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(function, *args, **kwargs))

    async def call(self, service: str, payload: Mapping[str, Any] | None = None) -> Any:
        self.open_circuits.check(service)
        return await self._run(self.sync.call, service, payload)

    async def status(self, service: str) -> CircuitReport:
        return await self._run(self.sync.status, service)

    async def list_circuits(self) -> list[CircuitReport]:
        return await self._run(self.sync.list_circuits)

    async def registered_services(self) -> list[str] | None:
        return await self._run(self.sync.registered_services)

    async def force_open(
        self,
        service: str,
        *,
        until: datetime | None = None,
        for_seconds: int | None = None,
        reason: str = "",
    ) -> CircuitChange:
        return await self._run(self.sync.force_open, service, until=until, for_seconds=for_seconds, reason=reason)

    async def close(self, service: str) -> CircuitChange:
        return await self._run(self.sync.close, service)

    async def force_closed(self, service: str, reason: str = "") -> CircuitChange:
        return await self._run(self.sync.force_closed, service, reason)

    async def resync_shards(self, service: str | None = None) -> list[ShardRepair]:
        return await self._run(self.sync.resync_shards, service)

    async def aclose(self) -> None:
        """Stop the thread pool (calls still running finish on their threads)."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def __aenter__(self) -> AsyncBreakerClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
