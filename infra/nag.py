"""cdk-nag suppressions, written as the CloudFormation metadata cdk-nag reads.

Writing the metadata directly keeps cdk-nag a test-time tool: an app that uses the construct
does not need it installed. Each suppression names the rule, the exact findings it covers,
and why.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import CfnResource
from constructs import IConstruct


def suppress(construct: IConstruct, rule: str, reason: str, applies_to: Sequence[str] = ()) -> None:
    """Suppress ``rule`` on the CloudFormation resource behind ``construct``."""
    resource = construct if isinstance(construct, CfnResource) else construct.node.default_child
    if not isinstance(resource, CfnResource):
        raise TypeError(f"{construct.node.path} has no CloudFormation resource to annotate")
    metadata = resource.get_metadata("cdk_nag") or {"rules_to_suppress": []}
    entry: dict[str, object] = {"id": rule, "reason": reason}
    if applies_to:
        entry["applies_to"] = list(applies_to)
    metadata["rules_to_suppress"].append(entry)
    resource.add_metadata("cdk_nag", metadata)


XRAY_REASON = (
    "X-Ray's PutTraceSegments and PutTelemetryRecords support no resource-level permissions; AWS requires Resource '*'."
)
BASIC_EXECUTION_REASON = (
    "AWSLambdaBasicExecutionRole only allows writing the function's own logs "
    "(logs:CreateLogGroup, CreateLogStream, PutLogEvents)."
)
RUNTIME_REASON = (
    "Pinned to the newest Python runtime for which AWS publishes the Powertools layer the "
    "functions use; raised together with the layer."
)
