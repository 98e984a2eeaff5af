"""Helpers for tests against the in-process emulator (``LocalBreaker``).

Each test module that needs the emulator starts one, module-scoped, from the session's
``fast_assembly`` (1 s service timeout, no retry waits, 30 s open duration), and resets the
circuits before each test with ``reset_circuits``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sfn_breaker.local.breaker import LocalBreaker

DEMO_SERVICE = "payment"

#: An environment without AWS credentials or configuration (for ``CliRunner(env=...)``,
#: where ``None`` removes a variable): what a fresh machine looks like.
NO_AWS_ENV: dict[str, str | None] = {
    "AWS_ACCESS_KEY_ID": None,
    "AWS_SECRET_ACCESS_KEY": None,
    "AWS_SESSION_TOKEN": None,
    "AWS_SECURITY_TOKEN": None,
    "AWS_PROFILE": None,
    "AWS_DEFAULT_PROFILE": None,
    "AWS_ENDPOINT_URL": None,
    "AWS_ENDPOINT_URL_SFN": None,
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials",
    "AWS_CONFIG_FILE": "/nonexistent/config",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": None,
    "AWS_CONTAINER_CREDENTIALS_FULL_URI": None,
    "AWS_WEB_IDENTITY_TOKEN_FILE": None,
}


def reset_circuits(local: LocalBreaker) -> None:
    """Every circuit closed (items deleted), and stream deliveries done."""
    local.runtime.settle()
    table = local.session.resource("dynamodb", endpoint_url=local.endpoint_url).Table(local.stack.outputs["TableName"])
    for item in table.scan(ConsistentRead=True)["Items"]:
        table.delete_item(Key={"ServiceName": item["ServiceName"]})
    local.runtime.settle()


def service_calls(local: LocalBreaker) -> int:
    """How many times the demo service has been invoked so far."""
    return len(local.runtime.calls_to(local.stack.outputs["DemoServiceFunctionName"]))


def item(local: LocalBreaker, service: str = DEMO_SERVICE) -> dict[str, Any] | None:
    table = local.session.resource("dynamodb", endpoint_url=local.endpoint_url).Table(local.stack.outputs["TableName"])
    found: dict[str, Any] | None = table.get_item(Key={"ServiceName": service}, ConsistentRead=True).get("Item")
    return found


@contextmanager
def quiet_functions() -> Iterator[None]:
    """Keep the in-process Lambdas' log and metric lines (CloudWatch's, on AWS) out of stdout.

    In-process, the handlers print to this process's stdout from the emulator's threads, at any
    moment, which would land in whatever a test is reading (a CLI command's output). Their
    Powertools logger is created here first, outside any captured stream, then silenced; their
    metrics' EMF lines are printed by Powertools with ``print``, which is silenced in its modules.
    """
    import aws_lambda_powertools.metrics.base as metrics_base
    import aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch as metrics_emf

    import sfn_breaker.lambdas.observability

    function_logger = logging.getLogger(sfn_breaker.lambdas.observability.logger.name)
    was_disabled = function_logger.disabled
    function_logger.disabled = True
    modules: list[Any] = [metrics_base, metrics_emf]
    for module in modules:
        module.print = lambda *args, **kwargs: None
    try:
        yield
    finally:
        function_logger.disabled = was_disabled
        for module in modules:
            del module.print


def chinese_payload(request_bytes: int, service: str = DEMO_SERVICE) -> dict[str, str]:
    """A payload of Chinese text whose request (``{"ServiceName": ..., "Payload": ...}``, as the
    client sends it) is about ``request_bytes`` in UTF-8: 3 bytes a character, where the
    ``\\uXXXX`` escapes of ``json.dumps``'s default would take 6."""
    return _payload_filling(request_bytes, service, "text", "漢")


def ascii_payload(request_bytes: int, service: str = DEMO_SERVICE) -> dict[str, str]:
    """A payload whose request, as the client sends it, is exactly ``request_bytes``."""
    return _payload_filling(request_bytes, service, "blob", "x")


def _payload_filling(request_bytes: int, service: str, key: str, character: str) -> dict[str, str]:
    """``{key: character * n}``, with n as large as keeps the request within ``request_bytes`` (the
    empty request's own bytes counted as ``json.dumps`` writes them)."""
    overhead = len(json.dumps({"ServiceName": service, "Payload": {key: ""}}).encode())
    return {key: character * ((request_bytes - overhead) // len(character.encode()))}
