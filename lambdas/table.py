"""The CircuitStatus table client the handlers share, made once per container."""

from __future__ import annotations

import os

from sfn_breaker.core.store import CircuitStore

_store: CircuitStore | None = None


def circuit_store() -> CircuitStore:
    """The table named by ``TABLE_NAME``: made once per container, and again when the name
    changes (the local emulator redeploys in one process)."""
    global _store
    if _store is None or _store.table_name != os.environ["TABLE_NAME"]:
        _store = CircuitStore(os.environ["TABLE_NAME"])
    return _store
