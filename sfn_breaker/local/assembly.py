"""Synthesize the demo CDK app exactly as ``cdk synth`` does, without needing the CDK CLI.

``cdk synth`` passes the app its context through the ``CDK_CONTEXT_JSON`` environment variable
and lets it write the cloud assembly to ``CDK_OUTDIR``. Doing the same with the packaged demo
app (``python -m sfn_breaker.cdk.demo_app``, which ``app.py`` runs too) gives the emulator
and the tests the very template and assets that ``cdk deploy`` would deploy, from any folder,
with context overrides where a test or ``breaker local up -s`` needs other settings.

Every synth first checks the Node.js that the CDK will run on (``require_node``): the CDK and
the AWS SDK for JavaScript support Node 22 and newer, and jsii would otherwise run on an
end-of-life Node behind a banner.
"""

from __future__ import annotations

import json
import os
import re
import shutil
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


class AppError(ValueError):
    """A user's CDK app or cloud assembly cannot be run on the emulator; the message is one line."""


# -- the Node.js that the CDK runs on --------------------------------------------------------------

#: The oldest Node.js major version the CDK (and the AWS SDK for JavaScript) supports: Node 20 is
#: end-of-life for both; package.json's engines say the same.
NODE_MIN_MAJOR = 22
#: Where ``npm install node@22`` puts a Node 22, as ``make setup`` does when the system's is older.
NODE_FROM_NPM = "node_modules/node/bin"


class NodeVersionError(AppError):
    """The Node.js that the CDK would run on (``node`` on PATH, or ``JSII_NODE``) is missing or older
    than the CDK supports; the message says what was found, what is needed and how to get it."""


def _how_to_get_node() -> str:
    return (
        f"install Node.js {NODE_MIN_MAJOR} or newer (https://nodejs.org), or run `npm install node@{NODE_MIN_MAJOR}` "
        f"and put {NODE_FROM_NPM} first on PATH"
    )


def require_node(environ: Mapping[str, str] | None = None) -> str:
    """The version of the Node.js that jsii will start for the CDK under ``environ`` (default: this
    process's), checked before any synth: the CDK in Python runs on Node.js, through jsii, which runs
    ``JSII_NODE`` or else ``node`` from PATH. Raises ``NodeVersionError`` when it is missing or older
    than ``NODE_MIN_MAJOR`` (jsii would print a banner and run on, on a Node the CDK no longer supports)."""
    env = os.environ if environ is None else environ
    chosen = env.get("JSII_NODE") or "node"
    where = "JSII_NODE" if env.get("JSII_NODE") else "`node` on PATH"
    executable = shutil.which(chosen, path=env.get("PATH", os.defpath))
    if executable is None:
        found = f"JSII_NODE ({chosen}) is not a program" if env.get("JSII_NODE") else "there is no `node` on PATH"
        raise NodeVersionError(f"the CDK needs Node.js {NODE_MIN_MAJOR} or newer, and {found}: {_how_to_get_node()}")
    try:
        answer = subprocess.run(
            [executable, "--version"], capture_output=True, text=True, timeout=60, check=False, env=dict(env)
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NodeVersionError(f"{where} ({executable}) does not run ({exc}): {_how_to_get_node()}") from None
    version = re.fullmatch(r"v?(\d+)\.\d+\.\d+\S*", answer)
    if version is None:
        said = answer or "nothing"
        raise NodeVersionError(
            f"the CDK needs Node.js {NODE_MIN_MAJOR} or newer, and {where} ({executable}) says its version is "
            f"{said!r}: {_how_to_get_node()}"
        )
    if int(version.group(1)) < NODE_MIN_MAJOR:
        raise NodeVersionError(
            f"the CDK needs Node.js {NODE_MIN_MAJOR} or newer, and {where} ({executable}) is {answer}: {_how_to_get_node()}"
        )
    return answer


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


def synth_environment(outdir: Path, context: Mapping[str, Any] | None) -> dict[str, str]:
    """What ``cdk synth`` gives an app: its context in ``CDK_CONTEXT_JSON`` and ``CDK_OUTDIR``
    (created here) for the assembly. Refuses (``NodeVersionError``) a Node.js the CDK does not
    support, before anything runs; on a supported one (22, 24) jsii prints no banner to silence,
    and on one newer than jsii knows its warning is news worth showing."""
    require_node()
    outdir.mkdir(parents=True, exist_ok=True)
    return {**os.environ, "CDK_OUTDIR": str(outdir), "CDK_CONTEXT_JSON": json.dumps(dict(context or {}))}


def start_synth(
    outdir: Path, context: Mapping[str, Any] | None = None, app_module: str = DEMO_APP_MODULE
) -> subprocess.Popen[str]:
    """Start the demo app (or another app module) writing an assembly to ``outdir``;
    ``finish_synth`` waits for it."""
    return subprocess.Popen(
        [sys.executable, "-m", app_module],
        cwd=outdir,
        env=synth_environment(outdir, context),
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


# -- a user's own CDK app ------------------------------------------------------------------------

#: What every ``CircuitBreaker`` workflow has, and no other state machine is likely to: the state
#: that routes a call to its service's settings.
BREAKER_ROUTE_STATE = '"RouteService"'


def _cdk_json(app_dir: Path) -> dict[str, Any]:
    """``app_dir/cdk.json``, parsed (empty when there is none)."""
    path = app_dir / "cdk.json"
    if not path.is_file():
        return {}
    try:
        parsed = json.loads(path.read_text())
    except ValueError as exc:
        raise AppError(f"{path} is not JSON: {exc}") from None
    return parsed if isinstance(parsed, dict) else {}


def app_from_cdk_json(app_dir: Path) -> str | None:
    """The ``app`` command of ``app_dir/cdk.json``, as ``cdk synth`` runs it (``None``: no cdk.json or no app)."""
    app = _cdk_json(app_dir).get("app")
    return app if isinstance(app, str) and app.strip() else None


def synth_app(app: str, app_dir: Path, outdir: Path) -> Path:
    """Run ``app`` (a shell command, as in cdk.json) in ``app_dir`` as ``cdk synth`` runs it: the
    context of ``app_dir/cdk.json`` in ``CDK_CONTEXT_JSON``, the assembly written to ``outdir``."""
    context = _cdk_json(app_dir).get("context")
    env = synth_environment(outdir, context if isinstance(context, dict) else None)
    result = subprocess.run(app, shell=True, cwd=app_dir, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = " | ".join(line.strip() for line in result.stderr.strip().splitlines()[-3:] if line.strip())
        raise AppError(f"the app `{app}` failed to synthesize (exit {result.returncode}): {tail or '(no output)'}")
    if not (outdir / "manifest.json").is_file():
        raise AppError(f"the app `{app}` wrote no cloud assembly (does it call app.synth()?)")
    return outdir


def stack_names(directory: Path) -> list[str]:
    """The stacks of a cloud assembly, by artifact id (what ``cdk`` and the template files call them)."""
    try:
        manifest = json.loads((directory / "manifest.json").read_text())
    except (OSError, ValueError):
        raise AppError(f"{directory} is not a cloud assembly (no readable manifest.json)") from None
    artifacts = manifest.get("artifacts", {})
    return sorted(name for name, a in artifacts.items() if a.get("type") == "aws:cloudformation:stack")


def choose_stack(directory: Path, stack_name: str | None = None) -> Assembly:
    """The stack of ``directory`` to run: ``stack_name``, or the only one; it must hold a ``CircuitBreaker``."""
    names = stack_names(directory)
    if not names:
        raise AppError(f"the cloud assembly {directory} has no stack")
    if stack_name is None:
        if len(names) > 1:
            raise AppError(f"the app has several stacks ({', '.join(names)}): choose one with --stack")
        stack_name = names[0]
    elif stack_name not in names:
        raise AppError(f"no stack {stack_name!r} in the app; its stacks: {', '.join(names)}")
    assembly = Assembly(directory, stack_name)
    machines = [
        resource
        for resource in assembly.template.get("Resources", {}).values()
        if resource.get("Type") == "AWS::StepFunctions::StateMachine"
        and BREAKER_ROUTE_STATE in str(resource.get("Properties", {}).get("DefinitionString", ""))
    ]
    if not machines:
        raise AppError(
            f"stack {stack_name} has no CircuitBreaker construct (no breaker state machine): "
            "add sfn_breaker.cdk.CircuitBreaker to it"
        )
    return assembly
