"""The AWS operations of one call, closed and open, counted from the emulator's records.

Each call is made alone (no other traffic), so everything the emulator records between its start
and its end, stream deliveries included, belongs to it. Two calls are counted in each state: a
caller's first (a fresh process or execution environment: nothing cached) and its next one right
after, which shows what a caller that remembers (Powertools' local cache, a client that
remembers an open circuit) saves.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from bench.outage.base import Emulator, Outcome, Strategy
from bench.outage.counting import Operations, executions_of, history
from bench.outage.service import always_up

CALLS = ("closed, first", "closed, next", "open, first", "open, next")


@dataclass
class Counted:
    outcome: Outcome
    operations: Operations
    seconds: float
    """The call's latency, alone on the emulator."""


def count_calls(emulator: Emulator, strategy: Strategy) -> dict[str, Counted]:
    """Counted calls by name (``CALLS``); no open calls for a strategy without a circuit."""
    strategy.reset()
    emulator.switchboard.current = always_up(emulator.settings.service_seconds)
    counted: dict[str, Counted] = {}
    caller = strategy.new_caller()
    counted["closed, first"] = _one(emulator, strategy, caller)
    counted["closed, next"] = _one(emulator, strategy, caller)
    if strategy.circuit_closed() is not None:
        strategy.open_circuit()
        emulator.runtime.settle()
        caller = strategy.new_caller()
        counted["open, first"] = _one(emulator, strategy, caller)
        counted["open, next"] = _one(emulator, strategy, caller)
    strategy.close()
    strategy.reset()
    return counted


def _one(emulator: Emulator, strategy: Strategy, caller: object) -> Counted:
    sfn = emulator.session.client("stepfunctions")
    runtime = emulator.runtime
    runtime.settle()
    before = executions_of(sfn, strategy.machine_arn) if strategy.machine_arn else set()
    invocations = len(runtime.invocations)
    dynamo = emulator.recorder.mark()

    began = time.monotonic()
    outcome = caller()  # type: ignore[operator]
    seconds = time.monotonic() - began
    runtime.settle()

    operations = Operations()
    for invocation in runtime.invocations[invocations:]:
        operations.lambda_invocations[invocation.function_name] += 1
    operations.add_dynamodb(emulator.recorder.since(dynamo))
    if strategy.machine_arn:
        for arn in sorted(executions_of(sfn, strategy.machine_arn) - before):
            operations.add_history(history(sfn, arn))
    lambdas = emulator.session.client("lambda")
    for name in operations.lambda_invocations:
        memory = lambdas.get_function_configuration(FunctionName=name).get("MemorySize", 128)
        operations.lambda_memory_mb[name] = int(memory)
    return Counted(outcome, operations, seconds)
