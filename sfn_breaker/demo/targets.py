"""Where the demo runs, and the payment service's settings there.

A ``DemoTarget`` is a client plus where to read the platform's records: the local emulator
(``local_target``; ``LOCAL_DEMO_SETTINGS`` are the settings the demo deploys on it) or a deployed
stack (``deployed_target``: AWS, or an emulator at ``AWS_ENDPOINT_URL``). ``read_service_settings``
reads the payment service's ``ServiceSettings`` from the running workflow definition.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sfn_breaker.client import BreakerClient
from sfn_breaker.contract import DEFAULT_STACK_NAME, DEMO_SERVICE
from sfn_breaker.demo.errors import DemoError
from sfn_breaker.demo.records import ServiceRecords
from sfn_breaker.demo.scenario import ServiceSettings

if TYPE_CHECKING:
    from sfn_breaker.local import LocalBreaker

#: The settings the demo deploys on the local emulator, chosen through CDK context as a user
#: would: a 1 s timeout (the outage's 5 s calls blow through it), one retry after 1 s (so a
#: failing call costs its caller about 3 s), and a 5 s open period (so the circuit opens,
#: half-opens and reopens a few times during the outage, and closes soon after recovery).
LOCAL_DEMO_SETTINGS: dict[str, Any] = {
    "openDurationSeconds": 5,
    "serviceTimeoutSeconds": 1,
    "retryIntervalSeconds": 1,
    "backoffRate": 2.0,
    "maxAttempts": 2,
}
LOCAL_DEMO_CONTEXT: dict[str, Any] = {"circuit-breaker": LOCAL_DEMO_SETTINGS}


@dataclass
class DemoTarget:
    """What the demo runs against: a client, and where to read the platform's records."""

    name: str
    client: BreakerClient
    records: ServiceRecords | None
    settings: ServiceSettings | None
    in_process: bool = False
    """Whether the emulator runs in this process (its output is then kept off the timeline)."""


def read_service_settings(stepfunctions: Any, state_machine_arn: str, service: str = DEMO_SERVICE) -> ServiceSettings:
    """The deployed settings of ``service``, from its ``Configure`` state in the running definition."""
    definition = json.loads(stepfunctions.describe_state_machine(stateMachineArn=state_machine_arn)["definition"])
    state = definition["States"].get(f"Configure {service}")
    if state is None:
        raise DemoError(f"the deployed breaker has no service named {service!r}")
    config = state["Result"]
    policy = {**config, **(config.get("Policy") or {})}  # the open-circuit policy may be grouped
    return ServiceSettings(
        timeout_seconds=int(config["TimeoutSeconds"]),
        max_attempts=int(config["Retries"]) + 1,
        retry_delays_seconds=[int(d) for d in config["RetryDelaysSeconds"]],
        open_duration_seconds=int(policy["OpenDurationSeconds"]),
        function_arn=str(config["FunctionArn"]),
        failure_threshold=int(policy.get("FailureThreshold", 1)),
        half_open_probes=_optional_int(policy.get("HalfOpenProbes")),
    )


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def local_target(local: LocalBreaker) -> DemoTarget:
    stepfunctions = local.boto3_client("stepfunctions")
    settings = read_service_settings(stepfunctions, local.stack.state_machine_arn)
    records = ServiceRecords(
        stepfunctions=stepfunctions,
        state_machine_arn=local.stack.state_machine_arn,
        function_arn=settings.function_arn,
        local=local,
    )
    return DemoTarget(
        name="the local emulator (in-process)",
        client=local.client(),
        records=records,
        settings=settings,
        in_process=True,
    )


def deployed_target(*, stack_name: str = DEFAULT_STACK_NAME, session: Any = None) -> DemoTarget:
    """The deployed stack, found the way the client finds it (``AWS_ENDPOINT_URL`` included)."""
    client = BreakerClient(stack_name=stack_name, session=session)
    endpoint = os.environ.get("AWS_ENDPOINT_URL")  # the client has no endpoint of its own: boto3 reads this
    state_machine_arn = client.state_machine_arn  # first: it readies the session, or says what is missing
    stepfunctions = client.session.client("stepfunctions")
    settings: ServiceSettings | None
    try:
        settings = read_service_settings(stepfunctions, state_machine_arn)
    except DemoError:
        raise
    except Exception:  # no permission to describe the workflow: run with what the client can do
        settings = None
    records = None
    if settings is not None:
        records = ServiceRecords(
            stepfunctions=stepfunctions,
            state_machine_arn=state_machine_arn,
            function_arn=settings.function_arn,
            logs=client.session.client("logs"),
            lambda_client=client.session.client("lambda"),
        )
    where = f"the emulator at {endpoint}" if endpoint else f"AWS ({client.session.region_name})"
    return DemoTarget(name=f"stack {stack_name} on {where}", client=client, records=records, settings=settings)
