"""Powertools objects shared by the handlers, configured from the environment the construct sets.

POWERTOOLS_SERVICE_NAME names the ``service`` field of every log line and
POWERTOOLS_METRICS_NAMESPACE the CloudWatch namespace; each circuit-level metric carries a
``Circuit`` dimension so that an operator can graph one service's circuit.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from sfn_breaker.core.transitions import Circuit

logger = Logger()
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "CircuitBreaker")


def count(metric: str, circuit: str) -> None:
    """Emit one count of ``metric`` for ``circuit`` (an EMF line, flushed at once)."""
    with single_metric(
        name=metric,
        unit=MetricUnit.Count,
        value=1,
        namespace=NAMESPACE,
        default_dimensions={"Circuit": circuit},
    ):
        pass


def log_corrupt_bookkeeping(service: str, read: Circuit, **fields: Any) -> None:
    """Corrupt bookkeeping read from an item (say ``Failures`` as a String): the write about to be
    made replaces it. Logged with the old value, once per attribute, and counted."""
    for attribute, old in read.corrupt:
        logger.error(
            f"Corrupt circuit item: its {attribute} was not what the breaker writes and has been replaced",
            extra={**fields, "circuit": service, "attribute": attribute, "corrupt_value": old},
        )
        count("CorruptItem", service)
