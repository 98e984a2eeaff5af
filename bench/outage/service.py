"""The protected service on a schedule: healthy (about 100 ms), then down, then recovered.

It plays the demo stack's ``payment`` function for every strategy: whatever invokes that function
in the emulator (a workflow's task, a caller's ``Invoke``) reaches the ``OutageService`` of the
run in progress. Each call's arrival is kept, which is what "reached the service" means; the
emulator's own record of invocations is compared with it.
"""

from __future__ import annotations

import threading
import time
from typing import Any


class ServiceDown(RuntimeError):
    """What the service raises while it is down in ``fail`` mode."""


class OutageService:
    """``mode``: ``fail`` (every call fails at once while down) or ``hang`` (every call blocks
    for ``hang_seconds``, past any caller's timeout, then answers)."""

    def __init__(self, *, mode: str, down_at: float, up_at: float, latency: float, hang_seconds: float) -> None:
        self.mode = mode
        self.down_at = down_at
        self.up_at = up_at
        self.latency = latency
        self.hang_seconds = hang_seconds
        self.arrivals: list[float] = []
        self._lock = threading.Lock()

    def is_down(self, at: float) -> bool:
        return self.down_at <= at < self.up_at

    def __call__(self, event: Any, context: Any) -> Any:
        now = time.monotonic()
        with self._lock:
            self.arrivals.append(now)
        if self.is_down(now):
            if self.mode == "fail":
                raise ServiceDown("the service is down")
            time.sleep(self.hang_seconds)
            return {"late": True}
        time.sleep(self.latency)
        return {"ok": True}

    def reached_while_down(self) -> int:
        with self._lock:
            return sum(1 for t in self.arrivals if self.is_down(t))


class Switchboard:
    """The stand-in registered once for the service function; it forwards to the current service."""

    def __init__(self) -> None:
        self.current: OutageService | None = None

    def __call__(self, event: Any, context: Any) -> Any:
        if self.current is None:
            raise RuntimeError("no service is playing")
        return self.current(event, context)


def always_down(mode: str = "fail") -> OutageService:
    return OutageService(mode=mode, down_at=0.0, up_at=float("inf"), latency=0.1, hang_seconds=1.0)


def always_up(latency: float = 0.1) -> OutageService:
    return OutageService(mode="fail", down_at=float("inf"), up_at=float("inf"), latency=latency, hang_seconds=0.0)
