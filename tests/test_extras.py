"""A missing extra is named wherever it is met, in one line with the command that installs it.

Each case runs in a fresh interpreter where the extra's modules cannot be imported
(``sys.modules[name] = None`` makes ``import name`` raise ``ModuleNotFoundError``, as on an
installation without them). The wheel itself, installed with and without extras, is tested in
``tests/test_packaging.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CDK = ("aws_cdk", "constructs")
CLI = ("typer", "rich", "click")
LOCAL = ("moto", "aws_lambda_powertools", "matplotlib")
BARE = CDK + CLI + LOCAL
"""An installation of sfn-breaker with no extra: boto3 and the client only."""


def run_without(modules: tuple[str, ...], code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    blocked = "import sys\n" + "".join(f"sys.modules[{name!r}] = None\n" for name in modules)
    env = {**os.environ, "BREAKER_STATE_DIR": str(tmp_path), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-c", blocked + code], capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path
    )


def test_breaker_local_up_with_only_the_cli_extra_names_the_local_extra(tmp_path: Path) -> None:
    code = "sys.argv = ['breaker', 'local', 'up']\nfrom sfn_breaker.cli import main\nmain()"

    result = run_without(CDK + LOCAL, code, tmp_path)

    assert result.returncode == 1
    assert result.stderr.splitlines()[-1:] == [
        'error: `breaker local up` needs the local extra (moto is not installed): pip install "sfn-breaker[local]"'
    ]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "local.json").exists()


@pytest.mark.parametrize(
    ("statement", "modules", "extra", "missing"),
    [
        ("from sfn_breaker.local import LocalBreaker", BARE, "local", "moto"),
        ("from sfn_breaker.local import LocalBreaker", ("moto",), "local", "moto"),
        ("import sfn_breaker.demo", ("rich",), "local", "rich"),
        ("from sfn_breaker.cdk import CircuitBreaker", BARE, "cdk", "aws_cdk"),
        ("from sfn_breaker.cdk import CircuitBreaker", ("constructs",), "cdk", "constructs"),
    ],
)
def test_an_import_that_needs_an_extra_names_it_in_one_traceback(
    tmp_path: Path, statement: str, modules: tuple[str, ...], extra: str, missing: str
) -> None:
    result = run_without(modules, statement, tmp_path)

    where = statement.split()[1]
    assert result.returncode == 1
    assert result.stderr.count("Traceback") == 1, result.stderr  # no second, chained traceback
    assert result.stderr.splitlines()[-1] == (
        f"ModuleNotFoundError: {where} needs the {extra} extra ({missing} is not installed): "
        f'pip install "sfn-breaker[{extra}]"'
    )
