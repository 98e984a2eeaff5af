"""circuit-breaker: a serverless circuit breaker for AWS, shared by every caller.

- Callers: ``from circuit_breaker import BreakerClient, AsyncBreakerClient, CircuitOpenError, ...``
- Platform teams: ``from circuit_breaker.cdk import CircuitBreaker, ProtectedService, BreakerSettings``
  (``pip install "circuit-breaker[cdk]"``)
- Tests of your own code: ``from circuit_breaker.local import LocalBreaker``
  (``pip install "circuit-breaker[local]"``)

The names below are imported on first use (PEP 562), not when the package is imported. The
breaker's own Lambda functions ship this file with only ``core`` and ``lambdas`` beside it, so
it must not import the client; and ``import circuit_breaker.cdk`` at synth time does not pay for
the client either.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from circuit_breaker.client import AsyncBreakerClient, BreakerClient, CircuitChange
    from circuit_breaker.core.model import CircuitState, CircuitView
    from circuit_breaker.errors import (
        BreakerError,
        CircuitOpenError,
        CircuitStoreUnavailableError,
        ConfigurationError,
        InvalidRequestError,
        ServiceCallError,
        StackNotFoundError,
    )

_EXPORTS = {
    "AsyncBreakerClient": "circuit_breaker.client",
    "BreakerClient": "circuit_breaker.client",
    "CircuitChange": "circuit_breaker.client",
    "CircuitState": "circuit_breaker.core.model",
    "CircuitView": "circuit_breaker.core.model",
    "BreakerError": "circuit_breaker.errors",
    "CircuitOpenError": "circuit_breaker.errors",
    "CircuitStoreUnavailableError": "circuit_breaker.errors",
    "ConfigurationError": "circuit_breaker.errors",
    "InvalidRequestError": "circuit_breaker.errors",
    "ServiceCallError": "circuit_breaker.errors",
    "StackNotFoundError": "circuit_breaker.errors",
}

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
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'circuit_breaker' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
