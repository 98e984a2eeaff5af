"""The state file of a background emulator: where ``breaker local up`` records what it started.

A background emulator (``python -m sfn_breaker.local.background``) writes its endpoint and
pid here once its stack is deployed, and removes the file when it stops; the CLI reads it to find
the emulator. Only the standard library is imported here, so that the CLI can read the state
file at start-up without loading the emulator.
"""

from __future__ import annotations

import json
import os
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HEALTH_PATH = "/_breaker/health"
STATE_DIR_ENV = "BREAKER_STATE_DIR"
STATE_FILE_NAME = "local.json"


@dataclass(frozen=True)
class Origin:
    """Where an emulator's stack comes from: a CDK app (its command and folder), a cloud assembly
    given as it is, or the package's demo app (with its ``settings``, the CDK context overrides).

    ``breaker local up`` compares the one it is asked for with the running emulator's, to say
    whether that emulator already runs what is asked.
    """

    app: str | None = None
    app_dir: str | None = None
    assembly: str | None = None
    settings: dict[str, Any] | None = None

    @property
    def is_demo(self) -> bool:
        return self.app is None and self.assembly is None

    def describe(self) -> str:
        if self.app is not None:
            return f"app `{self.app}` in {self.app_dir}"
        if self.assembly is not None:
            return f"cloud assembly {self.assembly}"
        if self.settings:
            return f"the demo app with {json.dumps(self.settings, separators=(',', ':'))}"
        return "the demo app"


@dataclass(frozen=True)
class EmulatorState:
    """What ``breaker local up`` records about the running emulator: where it answers, and what it runs."""

    pid: int
    endpoint_url: str
    region: str
    stack_name: str
    started_at: float
    log_file: str | None = None
    origin: Origin = field(default_factory=Origin)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}")
        partial.write_text(json.dumps(asdict(self), indent=2))
        partial.replace(path)  # atomic: a reader never sees half a file

    @classmethod
    def read(cls, path: Path) -> EmulatorState | None:
        """The recorded state, or ``None`` when there is no (readable) state file."""
        try:
            data = json.loads(path.read_text())
            return cls(**{**data, "origin": Origin(**(data.get("origin") or {}))})
        except (OSError, ValueError, TypeError):
            return None

    def is_alive(self, timeout: float = 2.0) -> bool:
        """Whether this emulator answers on its endpoint (and is the process recorded)."""
        health = emulator_health(self.endpoint_url, timeout)
        return health is not None and health.get("pid") == self.pid


def emulator_health(endpoint_url: str, timeout: float = 2.0) -> dict[str, Any] | None:
    """What the emulator at ``endpoint_url`` says about itself (``pid``, ``stackName``, ``region``),
    or ``None`` when no emulator of this package answers there."""
    try:
        with urllib.request.urlopen(f"{endpoint_url.rstrip('/')}{HEALTH_PATH}", timeout=timeout) as response:
            health = json.loads(response.read())
    except (OSError, ValueError):
        return None
    return health if isinstance(health, dict) and health.get("ok") else None


def default_state_file() -> Path:
    """``$BREAKER_STATE_DIR/local.json``, else under ``$XDG_CACHE_HOME`` or ``~/.cache``."""
    directory = os.environ.get(STATE_DIR_ENV)
    if directory:
        return Path(directory) / STATE_FILE_NAME
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "sfn-breaker" / STATE_FILE_NAME


def log_file_for(state_file: Path) -> Path:
    return state_file.with_suffix(".log")


def remove_state(path: Path, pid: int) -> None:
    """Remove the state file, if it still names the process ``pid`` (a newer emulator's is kept)."""
    state = EmulatorState.read(path)
    if state is not None and state.pid == pid:
        path.unlink(missing_ok=True)
