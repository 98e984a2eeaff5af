"""sfn-breaker: a serverless circuit breaker for AWS, shared by every caller.

- Callers: ``from sfn_breaker import BreakerClient, AsyncBreakerClient, CircuitOpenError, ...``
- Platform teams: ``from sfn_breaker.cdk import CircuitBreaker, ProtectedService, BreakerSettings``
  (``pip install "sfn-breaker[cdk]"``)
- Tests of your own code: ``from sfn_breaker.local import LocalBreaker``
  (``pip install "sfn-breaker[local]"``)

The names below are imported on first use (PEP 562), not when the package is imported. The
breaker's own Lambda functions ship this file with only ``core`` and ``lambdas`` beside it, so
it must not import the client; and ``import sfn_breaker.cdk`` at synth time does not pay for
the client either.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: The one place the version is written: pyproject.toml reads it at build time
#: ([tool.setuptools.dynamic]), and ``breaker --version`` reads the installed metadata built from it.
__version__ = "0.2.0"

if TYPE_CHECKING:
    from sfn_breaker.client import AsyncBreakerClient, BreakerClient, CircuitChange
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

_EXPORTS = {
    "AsyncBreakerClient": "sfn_breaker.client",
    "BreakerClient": "sfn_breaker.client",
    "CircuitChange": "sfn_breaker.client",
    "CircuitState": "sfn_breaker.core.model",
    "CircuitView": "sfn_breaker.core.model",
    "BreakerError": "sfn_breaker.errors",
    "CircuitOpenError": "sfn_breaker.errors",
    "CircuitStoreUnavailableError": "sfn_breaker.errors",
    "ConfigurationError": "sfn_breaker.errors",
    "InvalidRequestError": "sfn_breaker.errors",
    "ResponseTooLargeError": "sfn_breaker.errors",
    "ServiceCallError": "sfn_breaker.errors",
    "StackNotFoundError": "sfn_breaker.errors",
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
    "ResponseTooLargeError",
    "ServiceCallError",
    "StackNotFoundError",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sfn_breaker' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
