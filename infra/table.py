"""The CircuitStatus table: one item per service whose circuit is not plainly closed."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from constructs import Construct

from sfn_breaker.core import model


class CircuitStatusTable(Construct):
    """On-demand, encrypted, with point-in-time recovery, deletion protection, TTL on
    ``ExpiryTimeStamp``, and a stream (new and old images) that StreamMirror reads. Exposes the
    table as ``table`` and its customer-managed key, if any, as ``encryption_key``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        table_name: str | None = None,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        deletion_protection: bool = True,
        encryption_key: kms.IKey | None = None,
    ) -> None:
        """
        :param deletion_protection: DynamoDB refuses to delete the table (a console click, a
            ``cdk destroy``, a stack update that replaces it) until this is turned off.
        :param encryption_key: a customer-managed KMS key; by default the table is encrypted with
            the AWS-managed key (``aws/dynamodb``).
        """
        super().__init__(scope, construct_id)
        self.encryption_key = encryption_key
        self.table = dynamodb.Table(
            self,
            "Table",
            table_name=table_name,
            partition_key=dynamodb.Attribute(name=model.KEY, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            time_to_live_attribute=model.EXPIRY,
            encryption=(
                dynamodb.TableEncryption.AWS_MANAGED
                if encryption_key is None
                else dynamodb.TableEncryption.CUSTOMER_MANAGED
            ),
            encryption_key=encryption_key,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            deletion_protection=deletion_protection,
            stream=dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
            removal_policy=removal_policy,
        )


#: What a principal needs on the table's customer-managed key to read items and the stream (as
#: CDK's ``grant_read_data`` grants), and to write items too (without CDK's ``*`` actions).
KEY_READ_ACTIONS = ("kms:Decrypt", "kms:DescribeKey")
KEY_WRITE_ACTIONS = (*KEY_READ_ACTIONS, "kms:Encrypt", "kms:GenerateDataKey")
