"""Run the breaker without an AWS account: moto, the synthesized demo stack, in-process Lambdas.

``from sfn_breaker.local import LocalBreaker`` (``pip install "sfn-breaker[local]"``).
The name is imported on first use, so that the CLI can read the emulator's state file without
loading the emulator.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from sfn_breaker.extras import EMULATOR_MODULES, require

if TYPE_CHECKING:
    from sfn_breaker.local.breaker import LocalBreaker

_EXPORTS = {"LocalBreaker": "sfn_breaker.local.breaker"}

__all__ = ["LocalBreaker"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sfn_breaker.local' has no attribute {name!r}")
    require(EMULATOR_MODULES, needed_by="sfn_breaker.local", extra="local")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
