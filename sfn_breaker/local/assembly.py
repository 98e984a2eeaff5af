"""Synthesize the demo CDK app exactly as ``cdk synth`` does, without needing the CDK CLI.

``cdk synth`` passes the app its context through the ``CDK_CONTEXT_JSON`` environment variable
and lets it write the cloud assembly to ``CDK_OUTDIR``. Doing the same with the packaged demo
app (``python -m sfn_breaker.cdk.demo_app``, which ``app.py`` runs too) gives the emulator
and the tests the very template and assets that ``cdk deploy`` would deploy, from any folder,
with context overrides where a test or ``breaker local up -s`` needs other settings.
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

from sfn_breaker.contract import DEFAULT_STACK_NAME

DEMO_APP_MODULE = "sfn_breaker.cdk.demo_app"


class SynthError(RuntimeError):
    """The demo app failed to synthesize."""


@dataclass(frozen=True)
class Assembly:
    """A synthesized cloud assembly and one stack in it."""

    directory: Path
    stack_name: str = DEFAULT_STACK_NAME

    @property
    def template(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.directory / f"{self.stack_name}.template.json").read_text())
        return data

    @property
    def assets(self) -> dict[str, Any]:
        manifest = json.loads((self.directory / f"{self.stack_name}.assets.json").read_text())
        files: dict[str, Any] = manifest.get("files", {})
        return files


def merge_context(base: Mapping[str, Any], overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """``base`` with ``overrides`` merged in; a nested object (``circuit-breaker``) is merged key by key."""
    context = dict(base)
    for key, value in (overrides or {}).items():
        if isinstance(value, Mapping) and isinstance(context.get(key), Mapping):
            context[key] = {**context[key], **value}
        else:
            context[key] = value
    return context


def start_synth(
    outdir: Path, context: Mapping[str, Any] | None = None, app_module: str = DEMO_APP_MODULE
) -> subprocess.Popen[str]:
    """Start the demo app (or another app module) writing an assembly to ``outdir``;
    ``finish_synth`` waits for it."""
    outdir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "CDK_OUTDIR": str(outdir),
        "CDK_CONTEXT_JSON": json.dumps(dict(context or {})),
        "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
    }
    return subprocess.Popen(
        [sys.executable, "-m", app_module],
        cwd=outdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish_synth(process: subprocess.Popen[str], outdir: Path, stack_name: str = DEFAULT_STACK_NAME) -> Assembly:
    _, stderr = process.communicate()
    if process.returncode != 0:
        raise SynthError(f"the demo app failed to synthesize (exit {process.returncode}):\n{stderr}")
    return Assembly(outdir, stack_name)


def synth(outdir: Path, context: Mapping[str, Any] | None = None, stack_name: str = DEFAULT_STACK_NAME) -> Assembly:
    """Synthesize the demo app into ``outdir`` and return the stack's assembly."""
    return finish_synth(start_synth(outdir, context), outdir, stack_name)
