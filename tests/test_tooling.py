"""The tooling around the Python package: the Node.js version the CDK CLI and the JavaScript SDK need."""

from __future__ import annotations

import json
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
