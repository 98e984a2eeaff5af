"""Shared fixtures: the app is synthesized once per session, in a few variants.

- ``default_assembly``: exactly what ``cdk synth`` produces from ``cdk.json`` (template tests, and
  the one workflow test that measures the default backoff).
- ``fast_assembly``: the same app with small settings chosen through CDK context, as a user
  would (no retry waits, 1 s timeout), for workflow tests that should take milliseconds.
- ``local``: the in-process emulator on the fast assembly (one per test module), with every
  circuit closed before each test: the sync and async client tests share it. Modules that need
  another emulator (quiet, with a state file) define their own ``local``.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sfn_breaker.local import LocalBreaker
from sfn_breaker.local.assembly import Assembly, finish_synth, start_synth
from tests import feature_app
from tests.harness import REPOSITORY, Breaker, ScriptedService, deployed_breaker, repository_context
from tests.local_fixtures import reset_circuits

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


#: The semantics tests' settings for ``payment``: a threshold of two failed executions, open
#: periods that double on each failed probe, fail fast when the table cannot be read, a 5 s
#: timeout (long enough for a test to hold a probe call open) and two attempts.
TUNED_CONTEXT = {
    "circuit-breaker": {
        **FAST_CONTEXT["circuit-breaker"],
        "services": {
            "payment": {
                "failureThreshold": 2,
                "openDurationGrowth": 2.0,
                "storeFaultPolicy": "fail_fast",
                "serviceTimeoutSeconds": 5,
                "maxAttempts": 2,
            }
        },
    }
}
#: Read sharding (docs/scale.md): the same settings with ``payment`` kept on READ_SHARDS items.
#: The semantics and operator tests run on both and must see the same outcomes.
READ_SHARDS = 4


def sharded(context: dict[str, Any]) -> dict[str, Any]:
    breaker = context["circuit-breaker"]
    services = breaker.get("services", {})
    payment = {**services.get("payment", {}), "readShards": READ_SHARDS}
    return {"circuit-breaker": {**breaker, "services": {**services, "payment": payment}}}


CONTEXTS = {
    "default": None,
    "fast": FAST_CONTEXT,
    "tuned": TUNED_CONTEXT,
    "fast_sharded": sharded(FAST_CONTEXT),
    "tuned_sharded": sharded(TUNED_CONTEXT),
}


@pytest.fixture(scope="session")
def _assemblies(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> dict[str, Assembly]:
    """Synthesized once per test run: with pytest-xdist, the first worker synthesizes (the three
    in parallel) and the others wait for it and reuse the assemblies."""
    base = tmp_path_factory.getbasetemp()
    under_xdist = hasattr(request.config, "workerinput")
    root: Path = (base.parent if under_xdist else base) / "cdk-assemblies"
    root.mkdir(exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / ".done").exists():
            started = {
                name: start_synth(root / name, repository_context(context)) for name, context in CONTEXTS.items()
            }
            # The test app lives in this checkout's tests package: only its synth sees the checkout.
            os.environ["PYTHONPATH"] = str(REPOSITORY)
            try:
                started["features"] = start_synth(root / "features", {}, app_module=feature_app.__name__)
            finally:
                del os.environ["PYTHONPATH"]
            for name, process in started.items():
                finish_synth(process, root / name)
            (root / ".done").touch()
    assemblies = {name: Assembly(root / name, "CircuitBreaker") for name in CONTEXTS}
    return {**assemblies, "features": Assembly(root / "features", feature_app.STACK_NAME)}


@pytest.fixture(scope="session")
def default_assembly(_assemblies: dict[str, Assembly]) -> Assembly:
    return _assemblies["default"]


@pytest.fixture(scope="session")
def fast_assembly(_assemblies: dict[str, Assembly]) -> Assembly:
    return _assemblies["fast"]


@pytest.fixture(scope="session")
def features_assembly(_assemblies: dict[str, Assembly]) -> Assembly:
    """``tests.feature_app``: one service per per-service feature (ignored errors, fallbacks, ...)."""
    return _assemblies["features"]


@pytest.fixture(scope="session")
def assemblies(_assemblies: dict[str, Assembly]) -> dict[str, Assembly]:
    """Every variant by name (``CONTEXTS``), for tests parametrized over them."""
    return _assemblies


@pytest.fixture(scope="session")
def tuned_assembly(_assemblies: dict[str, Assembly]) -> Assembly:
    return _assemblies["tuned"]


@pytest.fixture
def service() -> ScriptedService:
    return ScriptedService()


@pytest.fixture
def breaker(fast_assembly: Assembly, service: ScriptedService) -> Iterator[Breaker]:
    with deployed_breaker(fast_assembly, service) as deployed:
        yield deployed


@pytest.fixture(scope="module")
def emulator(fast_assembly: Assembly) -> Iterator[LocalBreaker]:
    with LocalBreaker(assembly=fast_assembly) as running:
        yield running


@pytest.fixture
def local(emulator: LocalBreaker) -> LocalBreaker:
    """The module's emulator, with every circuit closed."""
    reset_circuits(emulator)
    return emulator
