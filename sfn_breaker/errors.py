"""What can go wrong when calling or operating the breaker, as exceptions a caller can act on.

- ``CircuitOpenError``: the breaker failed fast; the service was not called. Retry after
  ``retry_after`` (``None``: an operator holds the circuit open until further notice). A
  half-open circuit whose probe call is still in flight turns other callers away the same way.
  ``source`` says who answered: the breaker (an execution ran), or the client's memory of an
  earlier answer (``from_memory``: no execution was started).
- ``CircuitStoreUnavailableError``: the breaker could not read the circuit and the service's
  store-fault policy says fail fast; the service was not called.
- ``ServiceCallError``: the service was called and failed on every attempt (``timed_out`` when
  the last attempt ran past the service's timeout).
- ``InvalidRequestError``: the request itself is wrong (unknown service, a payload that is not a
  JSON object, a request too large for the breaker); retrying will not help.
- ``ResponseTooLargeError``: the service was called, but its answer (or its error, held next to
  a large request) was too large for Step Functions' 256 KiB state limit, so the breaker could
  not carry it back.
- ``ConfigurationError``: the breaker cannot be reached at all (no credentials or region, the
  stack is not deployed, the local emulator is not running).
- ``EmulatorError``: the local emulator could not be started, reached or stopped.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Final, Literal

AnswerSource = Literal["breaker", "memory"]
#: ``CircuitOpenError.source``: the breaker answered (an execution ran) ...
FROM_BREAKER: Final = "breaker"
#: ... or the client remembered an earlier answer and started no execution.
FROM_MEMORY: Final = "memory"


NOTHING_CONFIGURED: Final = (
    "No AWS credentials found and the local emulator is not running: start it with "
    "`breaker local up`, or configure AWS credentials (aws configure, AWS_PROFILE, ...)."
)
"""What the ``breaker`` CLI and the Python client both say when they find no credentials, no
endpoint and no running emulator: one message, so that a person meets the same advice in both."""


class BreakerError(Exception):
    """Base class of every error the client raises."""


class ConfigurationError(BreakerError):
    """The breaker cannot be reached: credentials, region, endpoint, or the stack is missing."""


class StackNotFoundError(ConfigurationError):
    """The breaker's CloudFormation stack (or its state machine or table) does not exist."""


class EmulatorError(BreakerError):
    """The local emulator could not be started, reached or stopped."""


class CircuitOpenError(BreakerError):
    """The circuit is open: the breaker failed fast without calling the service."""

    def __init__(
        self,
        service: str,
        *,
        retry_after: datetime | None,
        cause: str,
        execution_arn: str | None = None,
        source: AnswerSource = FROM_BREAKER,
        remembered_until: datetime | None = None,
    ) -> None:
        self.service = service
        self.retry_after = retry_after
        """When the circuit closes again (UTC); ``None`` when an operator holds it open until further notice."""
        self.cause = cause
        """The breaker's own words (for an answer from memory, those of the answer remembered)."""
        self.execution_arn = execution_arn
        """The execution that answered; ``None`` for an answer from the client's memory."""
        self.source = source
        """``FROM_BREAKER`` (``"breaker"``): an execution answered; ``FROM_MEMORY`` (``"memory"``): the
        client remembered an earlier answer and started no execution."""
        self.remembered_until = remembered_until
        """For an answer from memory: until when the client fails fast without asking the breaker."""
        if source == FROM_MEMORY:
            until = f" until {remembered_until.isoformat()}" if remembered_until is not None else ""
            super().__init__(
                f"{cause} [from this client's memory of the breaker's answer, kept{until}: no execution was started]"
            )
        else:
            super().__init__(cause)

    @property
    def from_memory(self) -> bool:
        """Whether the client answered from its memory of an open circuit, without starting an execution."""
        return self.source == FROM_MEMORY

    @property
    def held_open(self) -> bool:
        """Whether an operator holds the circuit open without an end."""
        return self.retry_after is None


class CircuitStoreUnavailableError(BreakerError):
    """The circuit could not be read and the service's policy is to fail fast: it was not called."""

    def __init__(self, service: str, *, cause: str, execution_arn: str | None = None) -> None:
        super().__init__(cause)
        self.service = service
        self.error = "CircuitStoreUnavailable"
        self.cause = cause
        self.execution_arn = execution_arn


class ServiceCallError(BreakerError):
    """The service was called and failed on every attempt the breaker made."""

    def __init__(
        self,
        service: str,
        *,
        error: str,
        cause: str | None,
        timed_out: bool,
        execution_arn: str | None = None,
    ) -> None:
        self.service = service
        self.error = error
        """The service's error name (``PaymentFailed``), or ``States.Timeout`` for a timeout."""
        self.cause = cause
        """The cause as the workflow reports it; for a Lambda service, its JSON error document."""
        self.timed_out = timed_out
        self.execution_arn = execution_arn
        what = "timed out" if timed_out else f"failed with {error}"
        super().__init__(f"service {service} {what}: {self.message}" if self.message else f"service {service} {what}")

    @property
    def message(self) -> str:
        """The readable part of the cause: a Lambda error's ``errorMessage``, else the cause itself."""
        if not self.cause:
            return ""
        try:
            document = json.loads(self.cause)
        except ValueError:
            return self.cause
        if isinstance(document, dict) and isinstance(document.get("errorMessage"), str):
            return document["errorMessage"]
        return self.cause


class InvalidRequestError(BreakerError):
    """The request cannot succeed as it is: ``UnknownService``, ``InvalidInput``, ..."""

    def __init__(self, error: str, cause: str, *, service: str | None = None) -> None:
        super().__init__(cause)
        self.error = error
        self.cause = cause
        self.service = service


class ResponseTooLargeError(BreakerError):
    """The service was called, but its answer (or its error, held next to a large request) passed
    Step Functions' 256 KiB state limit (``States.DataLimitExceeded``): the breaker could not carry
    it back. The service may have acted on the request; the same call will fail the same way."""

    def __init__(self, service: str, *, cause: str, execution_arn: str | None = None) -> None:
        super().__init__(cause)
        self.service = service
        self.error = "States.DataLimitExceeded"
        self.cause = cause
        """The client's explanation, ending with Step Functions' own cause."""
        self.execution_arn = execution_arn
