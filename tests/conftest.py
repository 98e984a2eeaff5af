"""Shared fixtures: the app is synthesized once per session, twice over.

- ``default_assembly``: exactly what ``cdk synth`` produces from ``cdk.json`` (template tests, and
  the one workflow test that measures the default backoff).
- ``fast_assembly``: the same app with small settings chosen through CDK context, as a user
  would (no retry waits, 1 s timeout), for workflow tests that should take milliseconds.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from circuit_breaker.local.assembly import Assembly, finish_synth, start_synth
from tests.harness import Breaker, ScriptedService, deployed_breaker

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "CircuitBreaker")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "circuit-breaker")

FAST_CONTEXT = {
    "circuit-breaker": {
        "openDurationSeconds": 30,
        "serviceTimeoutSeconds": 1,
        "retryIntervalSeconds": 0,
        "backoffRate": 2.0,
        "maxAttempts": 3,
    }
}


@pytest.fixture(scope="session")
def _assemblies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Assembly]:
    root: Path = tmp_path_factory.mktemp("cdk")
    started = {
        "default": start_synth(root / "default"),
        "fast": start_synth(root / "fast", FAST_CONTEXT),
    }
    return {name: finish_synth(process, root / name) for name, process in started.items()}


@pytest.fixture(scope="session")
def default_assembly(_assemblies: dict[str, Assembly]) -> Assembly:
    return _assemblies["default"]


@pytest.fixture(scope="session")
def fast_assembly(_assemblies: dict[str, Assembly]) -> Assembly:
    return _assemblies["fast"]


@pytest.fixture
def service() -> ScriptedService:
    return ScriptedService()


@pytest.fixture
def breaker(fast_assembly: Assembly, service: ScriptedService) -> Iterator[Breaker]:
    with deployed_breaker(fast_assembly, service) as deployed:
        yield deployed
