// The AWS SDK for JavaScript v3 against the local emulator, configured as `breaker local up`
// prints and the README shows. Used by tests/test_other_clients.py; prints one JSON document.
//
//   node tests/js/emulator_client.mjs <endpoint> <region> <stack name> <input JSON>
//
// With "env" as the endpoint, the clients are given no endpoint, region or credentials: the SDK
// reads AWS_ENDPOINT_URL, AWS_REGION and the credentials from the environment.
import { CloudFormationClient, DescribeStacksCommand } from "@aws-sdk/client-cloudformation";
import { DynamoDBClient, ScanCommand } from "@aws-sdk/client-dynamodb";
import { SFNClient, StartSyncExecutionCommand } from "@aws-sdk/client-sfn";

const [endpoint, region, stackName, input] = process.argv.slice(2);
const common =
  endpoint === "env"
    ? {}
    : { endpoint, region, credentials: { accessKeyId: "local", secretAccessKey: "local" } };

const stacks = await new CloudFormationClient(common).send(new DescribeStacksCommand({ StackName: stackName }));
const outputs = Object.fromEntries(stacks.Stacks[0].Outputs.map((o) => [o.OutputKey, o.OutputValue]));

// disableHostPrefix: the SDK would send StartSyncExecution to sync-<host>, which only AWS resolves.
const sfn = new SFNClient({ ...common, disableHostPrefix: true });
const execution = await sfn.send(
  new StartSyncExecutionCommand({ stateMachineArn: outputs.StateMachineArn, input }),
);

const scanned = await new DynamoDBClient(common).send(new ScanCommand({ TableName: outputs.TableName }));

let refused = null;
try {
  await sfn.send(new StartSyncExecutionCommand({ stateMachineArn: outputs.StateMachineArn, input: "{not json" }));
} catch (error) {
  refused = { name: error.name, status: error.$metadata?.httpStatusCode, message: error.message };
}

console.log(
  JSON.stringify({
    outputKeys: Object.keys(outputs).sort(),
    status: execution.status,
    output: execution.output ?? null,
    error: execution.error ?? null,
    items: scanned.Items.map((item) => item.ServiceName.S),
    refused,
  }),
);
