"""Names and limits that the stack, the client, the CLI and the emulator must agree on.

Each lives here once. Nothing in this module imports anything beyond the standard library, so
every part of the package (the CDK construct at synth time, the Lambda functions, the client)
can use it.
"""

from __future__ import annotations

from typing import Final

#: The demo stack's name, and the stack the client and the CLI look for by default.
DEFAULT_STACK_NAME: Final = "CircuitBreaker"
#: The stack outputs the client reads to find the workflow and the table.
STATE_MACHINE_OUTPUT: Final = "StateMachineArn"
TABLE_OUTPUT: Final = "TableName"
DEMO_SERVICE_OUTPUT: Final = "DemoServiceFunctionName"
#: The demo service that the demo stack registers.
DEMO_SERVICE: Final = "payment"

#: Step Functions' limit: an Express execution lasts at most five minutes.
EXPRESS_MAX_SECONDS: Final = 300
#: Step Functions' limit on an execution's input: 256 KiB, counted in UTF-8 bytes.
MAX_INPUT_BYTES: Final = 262144
#: The largest request (``{"ServiceName": ..., "Payload": ...}``, in UTF-8 bytes) that the breaker
#: can carry through its states to a service with the default settings and back with an answer
#: as large as the request, rounded down: the states add the service's settings and their own
#: bookkeeping (docs/limits.md has the measured numbers).
USABLE_REQUEST_BYTES: Final = 261000

#: What an emulator endpoint gets when no region or credentials are configured (moto accepts any
#: credentials; these keep the emulator's sessions independent of the user's).
EMULATOR_REGION: Final = "us-east-1"
EMULATOR_ACCESS_KEY: Final = "local"
EMULATOR_SECRET_KEY: Final = "local"

#: The error names the breaker's own workflow ends with. A service error that reuses one of them
#: ends as ``ServiceFailed`` (its name and cause inside the cause), so that a caller never takes a
#: service's error for the breaker's; none of them may be registered as an ignored error.
BREAKER_ERRORS: Final = ("CircuitOpen", "CircuitStoreUnavailable", "InvalidInput", "UnknownService", "ServiceTimeout")
#: What the workflow ends with when every attempt failed and the error was not one of its own.
SERVICE_FAILED: Final = "ServiceFailed"
