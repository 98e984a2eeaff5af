"""The tooling around the Python package: the Node.js version the CDK CLI and the JavaScript SDK need,
and the CDK CLI's feature flags."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_package_json_requires_the_node_the_cdk_supports() -> None:
    package = json.loads((ROOT / "package.json").read_text())
    lock = json.loads((ROOT / "package-lock.json").read_text())

    assert package["engines"] == {"node": ">=22"}
    assert lock["packages"][""]["engines"] == package["engines"]


def _setup_node(tmp_path: Path, node_major: int) -> tuple[str, list[str]]:
    """``make`` builds the CDK CLI's target in a copy of the Makefile, with an npm that only records what it is asked."""
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    (tmp_path / "package.json").write_text("{}")
    stub = tmp_path / "bin" / "npm"
    stub.parent.mkdir()
    stub.write_text('#!/bin/sh\necho "$@" >> npm.log\nmkdir -p node_modules/.bin\n')
    stub.chmod(0o755)
    env = {"PATH": f"{stub.parent}:/usr/local/bin:/usr/bin:/bin"}
    result = subprocess.run(
        ["make", "-B", "node_modules/.bin/cdk", f"NODE_MAJOR={node_major}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout, (tmp_path / "npm.log").read_text().splitlines()


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_setup_with_an_old_node_says_so_in_one_line_and_installs_node_22_from_npm(tmp_path: Path) -> None:
    output, npm = _setup_node(tmp_path, node_major=20)

    said = [line for line in output.splitlines() if "older than the CDK supports" in line]
    assert len(said) == 1
    assert "(^22, ^24)" in said[0] and "install Node 22+ (https://nodejs.org)" in said[0]
    assert npm[-1] == "install --no-save --no-audit --no-fund --silent node@22"


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_setup_with_node_22_uses_it(tmp_path: Path) -> None:
    output, npm = _setup_node(tmp_path, node_major=22)

    assert "older than the CDK supports" not in output
    assert npm == ["install --no-audit --no-fund --silent"]


#: The feature flags the CDK CLI's `cdk init` writes into a new app's cdk.json (the pinned CLI).
INIT_FLAGS = ROOT / "node_modules" / "aws-cdk" / "lib" / "init-templates" / ".recommended-feature-flags.json"


def test_the_demo_app_and_the_quick_start_set_the_feature_flags_cdk_init_writes() -> None:
    """Both copies of the list (the demo app's, in code, and the quick start's cdk.json) are the
    pinned CDK CLI's: after a CLI upgrade that changes it, this says to copy the new list."""
    from sfn_breaker.cdk.demo_app import DEFAULT_CONTEXT
    from sfn_breaker.cdk.feature_flags import RECOMMENDED_FEATURE_FLAGS
    from tests.test_packaging import quickstart_files

    assert INIT_FLAGS.exists(), "run `make setup` (npm install) first"
    init_flags = json.loads(INIT_FLAGS.read_text())
    quickstart_cdk_json = json.loads(quickstart_files()["cdk.json"])

    assert init_flags == RECOMMENDED_FEATURE_FLAGS
    assert quickstart_cdk_json == {"app": "python3 app.py", "context": init_flags}
    assert list(quickstart_cdk_json["context"]) == sorted(init_flags)  # as `cdk init` writes them
    assert init_flags == DEFAULT_CONTEXT


@pytest.mark.slow
def test_cdk_synth_of_this_repository_prints_nothing(tmp_path: Path) -> None:
    """`make synth` (`cdk synth --quiet` with cdk.json's app, on the Node.js first on PATH, as
    `make test` runs it): no warning, not even the CLI's count of unconfigured feature flags."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "CDK_CONTEXT_JSON")
    }
    node = subprocess.run(["node", "--version"], env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert int(node.lstrip("v").split(".")[0]) >= 22, f"node {node} on PATH: run the tests with `make test`"

    synth = subprocess.run(
        [ROOT / "node_modules" / ".bin" / "cdk", "synth", "--quiet", "--output", tmp_path / "cdk.out"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )

    assert synth.returncode == 0, synth.stderr
    assert (synth.stdout, synth.stderr) == ("", "")
