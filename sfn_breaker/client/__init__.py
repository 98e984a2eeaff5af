"""Call services through the breaker, and read and operate its circuits, from Python.

::

    client = BreakerClient()                       # finds the CircuitBreaker stack's outputs
    try:
        receipt = client.call("payment", {"amount": 5})
    except CircuitOpenError as exc:                # failed fast: the service was not called
        retry_at = exc.retry_after                 # None: held open by an operator
    except ServiceCallError as exc:                # the service failed on every attempt
        ...exc.error, exc.cause, exc.timed_out

In async code, ``async with AsyncBreakerClient() as client:`` and the same methods, awaited.

- ``sync``: ``BreakerClient`` (calling, and the operators' ``status``, ``list_circuits``,
  ``force_open``, ``close``, ``force_closed``, ``resync_shards``), ``CircuitReport`` (a
  ``CircuitView`` with the operator's ``reason`` and any read shard out of step), ``CircuitChange``
  and ``ShardRepair``.
- ``asynchronous``: ``AsyncBreakerClient``, the sync client's calls on a bounded thread pool.
- ``base``: the constructor and settings both clients share.
- ``memory``: the clients' memory of open circuits: after a ``CircuitOpen`` answer, calls fail
  fast without an execution for a while (``remember_open_seconds``; ``CircuitOpenError.from_memory``).
- ``connection``: finding the breaker (stack outputs, session, endpoint) and translating AWS's errors.
- ``results``: reading a ``StartSyncExecution`` response (``result_from``).
"""

from sfn_breaker.client.asynchronous import AsyncBreakerClient
from sfn_breaker.client.results import result_from
from sfn_breaker.client.sync import BreakerClient, CircuitChange, CircuitReport, ShardRepair
from sfn_breaker.core.model import CircuitState, CircuitView
from sfn_breaker.errors import (
    BreakerError,
    CircuitOpenError,
    CircuitStoreUnavailableError,
    ConfigurationError,
    InvalidRequestError,
    ResponseTooLargeError,
    ServiceCallError,
    StackNotFoundError,
)

__all__ = [
    "AsyncBreakerClient",
    "BreakerClient",
    "BreakerError",
    "CircuitChange",
    "CircuitOpenError",
    "CircuitReport",
    "CircuitState",
    "CircuitStoreUnavailableError",
    "CircuitView",
    "ConfigurationError",
    "InvalidRequestError",
    "ResponseTooLargeError",
    "ServiceCallError",
    "ShardRepair",
    "StackNotFoundError",
    "result_from",
]
