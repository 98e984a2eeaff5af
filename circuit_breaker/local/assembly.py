"""Synthesize the CDK app exactly as ``cdk synth`` does, without needing the CDK CLI.

``cdk synth`` reads ``cdk.json``, passes its context to ``python3 app.py`` through the
``CDK_CONTEXT_JSON`` environment variable, and lets the app write the cloud assembly to
``CDK_OUTDIR``. Doing the same here gives the tests and the local emulator the very template
and assets that ``cdk deploy`` would deploy, with context overrides where a test needs small
settings.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class SynthError(RuntimeError):
    """``app.py`` failed to synthesize."""


@dataclass(frozen=True)
class Assembly:
    """A synthesized cloud assembly and one stack in it."""

    directory: Path
    stack_name: str

    @property
    def template(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.directory / f"{self.stack_name}.template.json").read_text())
        return data

    @property
    def assets(self) -> dict[str, Any]:
        manifest = json.loads((self.directory / f"{self.stack_name}.assets.json").read_text())
        files: dict[str, Any] = manifest.get("files", {})
        return files


def project_context(overrides: Mapping[str, Any] | None = None, *, root: Path = PROJECT_ROOT) -> dict[str, Any]:
    """The context ``cdk synth`` would pass: ``cdk.json``'s, with ``overrides`` merged in
    (a nested ``circuit-breaker`` object is merged key by key)."""
    context: dict[str, Any] = dict(json.loads((root / "cdk.json").read_text()).get("context", {}))
    for key, value in (overrides or {}).items():
        if isinstance(value, Mapping) and isinstance(context.get(key), Mapping):
            context[key] = {**context[key], **value}
        else:
            context[key] = value
    return context


def start_synth(
    outdir: Path, context: Mapping[str, Any] | None = None, *, root: Path = PROJECT_ROOT
) -> subprocess.Popen[str]:
    """Start ``app.py`` writing an assembly to ``outdir``; ``finish_synth`` waits for it."""
    outdir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "CDK_OUTDIR": str(outdir),
        "CDK_CONTEXT_JSON": json.dumps(project_context(context, root=root)),
        "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
    }
    return subprocess.Popen(
        [sys.executable, str(root / "app.py")],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish_synth(process: subprocess.Popen[str], outdir: Path, stack_name: str = "CircuitBreaker") -> Assembly:
    _, stderr = process.communicate()
    if process.returncode != 0:
        raise SynthError(f"app.py failed to synthesize (exit {process.returncode}):\n{stderr}")
    return Assembly(outdir, stack_name)


def synth(outdir: Path, context: Mapping[str, Any] | None = None, stack_name: str = "CircuitBreaker") -> Assembly:
    """Synthesize the app into ``outdir`` and return the stack's assembly."""
    return finish_synth(start_synth(outdir, context), outdir, stack_name)
