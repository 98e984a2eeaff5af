"""Read sharding in the workflow tests: a deployed breaker per assembly variant, and the check
that a sharded circuit's read shards hold what its base item says (docs/scale.md)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sfn_breaker.core import model
from sfn_breaker.local.assembly import Assembly
from tests.harness import Breaker, ScriptedService, deployed_breaker


def shards_in_step(deployed: Breaker, read_shards: int, service: str = "payment") -> None:
    """Every read shard holds what the workflow reads of the base item (none when it has nothing)."""
    deployed.runtime.settle()
    view = model.shard_view(deployed.item(service))
    expected = (
        {} if view is None else {key: {**view, model.KEY: key} for key in model.shard_keys(service, read_shards)[1:]}
    )
    assert deployed.shards(service) == expected


@contextmanager
def breaker_on(assembly: Assembly, service: ScriptedService, read_shards: int) -> Iterator[Breaker]:
    """The breaker of ``assembly``; after the test, with read shards, its shards must be in step."""
    with deployed_breaker(assembly, service) as deployed:
        yield deployed
        tables = deployed.session.client("dynamodb").list_tables()["TableNames"]
        if deployed.table_name not in tables:
            return  # the test deleted the table (a store fault): nothing left to compare
        if read_shards > 1:
            shards_in_step(deployed, read_shards)
        else:
            assert deployed.shards() == {}
