"""Helpers for tests against the in-process emulator (``LocalBreaker``).

Each test module that needs the emulator starts one, module-scoped, from the session's
``fast_assembly`` (1 s service timeout, no retry waits, 30 s open duration), and resets the
circuits before each test with ``reset_circuits``.
"""

from __future__ import annotations

from typing import Any

from circuit_breaker.local.server import LocalBreaker

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
