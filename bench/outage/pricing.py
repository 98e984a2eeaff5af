"""AWS list prices (us-east-1) and the cost of one million calls from their counted operations.

Prices, as listed on AWS's public pricing pages (read 2026-11-23, from stored copies of the Step
Functions and Lambda pages; the DynamoDB on-demand figures as a secondary source quotes that page):

- Step Functions, https://aws.amazon.com/step-functions/pricing/ : Standard workflows $0.025 per
  1,000 state transitions (retries count as transitions); Express workflows $1.00 per million
  requests plus $0.06 per GB-hour of duration for the first 1,000 GB-hours a month
  (= $0.0000166667 per GB-second), duration rounded up to 100 ms, memory billed in 64 MB chunks.
- Lambda, https://aws.amazon.com/lambda/pricing/ : $0.20 per million requests, $0.0000166667 per
  GB-second (x86, first 6 billion GB-seconds a month), billed per 1 ms.
- DynamoDB on-demand, https://aws.amazon.com/dynamodb/pricing/on-demand/ : $0.125 per million
  read request units, $0.625 per million write request units (Standard table class). A strongly
  consistent read of up to 4 KB is one unit, an eventually consistent one half; a write of up to
  1 KB is one unit.

What the emulator cannot measure is assumed, the same for every strategy:

- an Express execution's billed duration: the service's 100 ms (when it is called) plus 50 ms of
  the workflow's own work, rounded up to 100 ms (200 ms closed, 100 ms open), at 64 MB;
- a breaker's own Lambda invocation: 30 ms at its configured memory;
- the service's own invocation is left out: every strategy pays it for each call that reaches the
  service. Free tiers are left out too.
"""

from __future__ import annotations

import math

from bench.outage.counting import Operations

STANDARD_TRANSITION = 0.025 / 1000
EXPRESS_REQUEST = 1.00 / 1_000_000
EXPRESS_GB_SECOND = 0.06 / 3600
LAMBDA_REQUEST = 0.20 / 1_000_000
LAMBDA_GB_SECOND = 0.0000166667
DYNAMODB_READ_UNIT = 0.125 / 1_000_000
DYNAMODB_WRITE_UNIT = 0.625 / 1_000_000

EXPRESS_OVERHEAD_MS = 50
EXPRESS_MEMORY_MB = 64
BREAKER_LAMBDA_MS = 30
PRICES_READ_ON = "2026-11-23"


def express_billed_ms(service_called: bool, service_ms: float) -> int:
    work = (service_ms if service_called else 0.0) + EXPRESS_OVERHEAD_MS
    return max(100, math.ceil(work / 100) * 100)


def cost_per_million(operations: Operations, *, service_function: str, standard: bool, service_ms: float) -> float:
    """Dollars for one million calls that each cost ``operations``."""
    cost = 0.0
    if operations.executions:
        if standard:
            cost += operations.billable_transitions * STANDARD_TRANSITION
        else:
            called = operations.lambda_invocations.get(service_function, 0) > 0
            gb_seconds = express_billed_ms(called, service_ms) / 1000 * EXPRESS_MEMORY_MB / 1024
            cost += operations.executions * (EXPRESS_REQUEST + gb_seconds * EXPRESS_GB_SECOND)
    for name, count in operations.lambda_invocations.items():
        if name == service_function:
            continue
        memory_gb = operations.lambda_memory_mb.get(name, 128) / 1024
        cost += count * (LAMBDA_REQUEST + BREAKER_LAMBDA_MS / 1000 * memory_gb * LAMBDA_GB_SECOND)
    cost += operations.read_units * DYNAMODB_READ_UNIT + operations.write_units * DYNAMODB_WRITE_UNIT
    return cost * 1_000_000
