"""A pytest plugin: your own CDK app's breaker on the emulator, for your own tests.

Registered through the ``pytest11`` entry point, so installing ``sfn-breaker`` is enough; it only
defines fixtures and two ini options, and imports nothing heavy until a fixture is used (the
fixtures need ``pip install "sfn-breaker[local]"``).

- ``breaker_emulator`` (session): a ``LocalBreaker`` running your app's stack. The app is the
  ``breaker_app`` ini option, else ``cdk.json``'s ``app`` in pytest's root folder; the stack is
  ``breaker_stack``, else the app's only stack. Synthesized and deployed once per session.
- ``breaker_circuits`` (each test): ``client`` (a ``BreakerClient`` bound to that stack), with
  every circuit closed when the test starts; ``open(service)`` and ``close(service)`` as an
  operator does; ``calls(service)``, how many calls reached the service during the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from sfn_breaker.client import BreakerClient
    from sfn_breaker.local.breaker import LocalBreaker


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("breaker_app", "the CDK app command for breaker_emulator (default: cdk.json's app)", default=None)
    parser.addini("breaker_stack", "the stack for breaker_emulator (default: the app's only stack)", default=None)


def require_local_extra() -> None:
    """Fail with the install command when the ``local`` extra (moto, the CDK, Powertools) is
    missing, in the words every other part of the package uses (``sfn_breaker.extras``)."""
    from sfn_breaker.extras import EMULATOR_MODULES, first_missing, missing_extra_message

    module = first_missing(EMULATOR_MODULES)
    if module is not None:
        raise pytest.UsageError(missing_extra_message("the breaker_emulator fixture", "local", module))


@pytest.fixture(scope="session")
def breaker_emulator(pytestconfig: pytest.Config) -> Iterator[LocalBreaker]:
    """Your app's breaker stack on the emulator, for the whole session."""
    require_local_extra()
    from sfn_breaker.local.assembly import AppError, app_from_cdk_json
    from sfn_breaker.local.breaker import LocalBreaker

    app_dir = Path(pytestconfig.rootpath)
    app = pytestconfig.getini("breaker_app") or app_from_cdk_json(app_dir)
    if not app:
        raise pytest.UsageError(
            f"breaker_emulator: no app; set the breaker_app ini option or add cdk.json to {app_dir}"
        )
    stack = pytestconfig.getini("breaker_stack") or None
    local = LocalBreaker(app=app, app_dir=app_dir, stack_name=stack)
    refusal = None
    try:
        local.start()
    except AppError as exc:  # what the app (or the Node.js it needs) gets wrong
        refusal = f"breaker_emulator: {exc}"
    if refusal is not None:  # its one line, without frames or the exception it replaces
        pytest.fail(refusal, pytrace=False)
    try:
        yield local
    finally:
        local.stop()


@dataclass
class BreakerCircuits:
    """One test's view of the emulated breaker (the ``breaker_circuits`` fixture)."""

    local: LocalBreaker
    client: BreakerClient
    functions: dict[str, str]
    _baseline: dict[str, int] = field(default_factory=dict)

    def open(self, service: str, reason: str = "opened by a test") -> None:
        """Hold ``service``'s circuit open, as ``breaker open`` does; it takes effect at once."""
        self.client.force_open(service, reason=reason)
        self.local.runtime.settle()

    def close(self, service: str) -> None:
        """Close ``service``'s circuit, as ``breaker close`` does."""
        self.client.close(service)
        self.local.runtime.settle()

    def calls(self, service: str) -> int:
        """How many invocations of ``service``'s function there have been during this test (retries count)."""
        return self._count(service) - self._baseline.get(service, 0)

    def _count(self, service: str) -> int:
        function = self.functions.get(service)
        if function is None:
            raise KeyError(f"no service {service!r} in the breaker; its services: {', '.join(sorted(self.functions))}")
        return len(self.local.runtime.calls_to(function))

    def reset(self) -> None:
        """Every circuit closed (its item deleted), and the call counts start again."""
        from sfn_breaker.contract import TABLE_OUTPUT

        self.local.runtime.settle()
        table = self.local.session.resource("dynamodb", endpoint_url=self.local.endpoint_url).Table(
            self.local.stack.outputs.get(TABLE_OUTPUT) or self.client.table_name
        )
        for item in table.scan(ConsistentRead=True)["Items"]:
            table.delete_item(Key={"ServiceName": item["ServiceName"]})
        self.local.runtime.settle()
        self._baseline = {service: self._count(service) for service in self.functions}


@pytest.fixture
def breaker_circuits(breaker_emulator: LocalBreaker) -> BreakerCircuits:
    """A ``BreakerClient`` on the session's emulator, every circuit closed, and handles to operate them."""
    from sfn_breaker.local.deploy import service_functions

    assert breaker_emulator.assembly is not None
    by_logical_id = service_functions(breaker_emulator.assembly.template)
    functions: dict[str, Any] = {
        service: breaker_emulator.stack.physical_ids[logical_id] for service, logical_id in by_logical_id.items()
    }
    circuits = BreakerCircuits(breaker_emulator, breaker_emulator.client(), functions)
    circuits.reset()
    return circuits
