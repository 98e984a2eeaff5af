"""The security review that runs on every change: cdk-nag's AwsSolutions pack and cfn-lint."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Annotations, Match
from cdk_nag import AwsSolutionsChecks

from sfn_breaker.cdk import CircuitBreaker, ProtectedService
from sfn_breaker.cdk.demo_app import DEFAULT_CONTEXT
from sfn_breaker.cdk.demo_stack import DemoStack
from sfn_breaker.local.assembly import Assembly
from tests.harness import repository_context


def test_cdk_nag_aws_solutions_finds_nothing_unsuppressed() -> None:
    app = cdk.App(context={**DEFAULT_CONTEXT, **repository_context()})
    stack = DemoStack(app)
    cdk.Aspects.of(app).add(AwsSolutionsChecks(verbose=True))
    annotations = Annotations.from_stack(stack)
    rule = Match.string_like_regexp("AwsSolutions-.*")

    findings = annotations.find_error("*", rule) + annotations.find_warning("*", rule)

    assert [f"{f.id}: {f.entry.data}" for f in findings] == []


def test_cfn_lint_finds_nothing_in_the_synthesized_template(default_assembly: Assembly) -> None:
    template = default_assembly.directory / f"{default_assembly.stack_name}.template.json"
    # W3005: CDK writes an explicit DependsOn next to a GetAtt on purpose (ordering of policies).
    result = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), "--ignore-checks", "W3005", "--", str(template)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stdout) == (0, "")


def _orders_function(stack: cdk.Stack) -> lambda_.Function:
    """A service for a breaker built in a bare stack."""
    return lambda_.Function(
        stack,
        "Orders",
        runtime=lambda_.Runtime.PYTHON_3_13,
        handler="index.handler",
        code=lambda_.Code.from_inline("def handler(event, context):\n    return event"),
    )


def test_cdk_nag_would_flag_a_wildcard_in_the_workflows_own_grants() -> None:
    """The Resource::* suppression covers only what AWS grants on "*" alone (log delivery, X-Ray):
    a wildcard invoke in the workflow's own grants is a finding, not hidden by it."""
    stack = cdk.Stack(cdk.App(), "Wildcard")
    function = _orders_function(stack)
    breaker = CircuitBreaker(stack, "Breaker", services={"orders": ProtectedService(function=function)})
    breaker.workflow_policy.add_statements(iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=["*"]))
    cdk.Aspects.of(stack).add(AwsSolutionsChecks())

    findings = Annotations.from_stack(stack).find_error("*", Match.string_like_regexp("AwsSolutions-IAM5.*"))

    flagged = [f for f in findings if "Resource::*" in str(f.entry.data)]
    assert [f.id for f in flagged] == ["/Wildcard/Breaker/Workflow/Grants/Resource"]


def test_cdk_nag_finds_nothing_with_a_customer_managed_key_and_an_alarm_topic() -> None:
    """The props the demo leaves at their defaults: the key's grants and the alarms' topic."""
    stack = cdk.Stack(cdk.App(), "Keyed")
    function = _orders_function(stack)
    key = kms.Key(stack, "TableKey", enable_key_rotation=True)
    topic = sns.Topic(stack, "OnCall", master_key=key, enforce_ssl=True)
    CircuitBreaker(
        stack,
        "Breaker",
        services={"orders": ProtectedService(function=function)},
        encryption_key=key,
        alarm_topic=topic,
    )
    cdk.Aspects.of(stack).add(AwsSolutionsChecks())
    annotations = Annotations.from_stack(stack)
    rule = Match.string_like_regexp("AwsSolutions-.*")

    findings = annotations.find_error("*", rule) + annotations.find_warning("*", rule)

    # The test's own service function is not the breaker's (its findings are the app's business).
    assert [f"{f.id}: {f.entry.data}" for f in findings if f.id.startswith("/Keyed/Breaker/")] == []
    assert {f.id for f in findings} <= {"/Keyed/Orders/Resource", "/Keyed/Orders/ServiceRole/Resource"}
