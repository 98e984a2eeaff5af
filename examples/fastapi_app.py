"""A FastAPI app that calls the demo ``payment`` service through the circuit breaker.

Run it against the deployed stack (AWS credentials and region as usual), or against the local
emulator::

    breaker local up
    AWS_ENDPOINT_URL=http://127.0.0.1:<port> uvicorn examples.fastapi_app:app

    curl -X POST localhost:8000/payments -H 'content-type: application/json' -d '{"amount": 12.5}'

How the breaker's outcomes become HTTP responses:

- the service answered                     -> 200 with its response
- the circuit is open (failed fast)        -> 503, ``Retry-After`` = seconds until it may close
  (no ``Retry-After`` while an operator holds it open until further notice)
- the circuit cannot be read, fail-fast policy -> 503 without ``Retry-After``
- the service timed out on every attempt   -> 504
- the service failed on every attempt      -> 502
- unknown service                          -> 404;  a payload that is not a JSON object -> 400
- the breaker itself cannot be reached     -> 500 (a problem of this app's configuration)

The endpoints stay thin: they call ``AsyncBreakerClient`` (which never blocks the event loop)
and let the exception handlers below translate the breaker's errors.

**One client for the whole app**, made in the lifespan when the app starts and closed when it
shuts down, never one per request: a client keeps its AWS connections and its thread pool
(measured against the emulator: about 12 ms a call with one shared client, 136 ms when each
call opens its own), and it remembers the circuits it found open, so that later requests fail
fast without starting an execution. A client made per request forgets that at once.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from fastapi import Body, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from sfn_breaker import (
    AsyncBreakerClient,
    BreakerError,
    CircuitOpenError,
    CircuitStoreUnavailableError,
    InvalidRequestError,
    ServiceCallError,
)

PAYMENT_SERVICE = "payment"


class PaymentRequest(BaseModel):
    amount: float = Field(gt=0)
    currency: str = "EUR"
    # The demo service's own knobs, to watch the breaker at work: "slow" runs past its timeout.
    mode: Literal["ok", "slow", "fail"] = "ok"
    delayMs: int | None = Field(default=None, ge=0, le=60_000)


def create_app(client_factory: Callable[[], AsyncBreakerClient] = AsyncBreakerClient) -> FastAPI:
    """The app; ``client_factory`` builds the one breaker client at start-up (tests hand in their own)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # One client shared by every request; leaving the block closes it when the app shuts down.
        async with client_factory() as breaker:
            app.state.breaker = breaker
            yield

    app = FastAPI(title="Payments, behind a circuit breaker", lifespan=lifespan)

    @app.post("/payments")
    async def pay(payment: PaymentRequest, request: Request) -> Any:
        breaker: AsyncBreakerClient = request.app.state.breaker
        return await breaker.call(PAYMENT_SERVICE, payment.model_dump(exclude_none=True))

    @app.post("/services/{service}")
    async def call_service(service: str, request: Request, payload: Annotated[Any, Body()] = None) -> Any:
        """Any registered service, with the request body as its payload."""
        breaker: AsyncBreakerClient = request.app.state.breaker
        return await breaker.call(service, payload)

    @app.exception_handler(CircuitOpenError)
    async def circuit_open(request: Request, exc: CircuitOpenError) -> JSONResponse:
        headers = {}
        body: dict[str, Any] = {"error": "CircuitOpen", "detail": exc.cause}
        if exc.retry_after is not None:
            headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after.timestamp() - time.time())))
            body["retryAfter"] = exc.retry_after.isoformat()
        return JSONResponse(status_code=503, content=body, headers=headers)

    @app.exception_handler(CircuitStoreUnavailableError)
    async def circuit_unreadable(request: Request, exc: CircuitStoreUnavailableError) -> JSONResponse:
        return JSONResponse(status_code=503, content={"error": exc.error, "detail": exc.cause})

    @app.exception_handler(ServiceCallError)
    async def service_failed(request: Request, exc: ServiceCallError) -> JSONResponse:
        status = 504 if exc.timed_out else 502
        return JSONResponse(status_code=status, content={"error": exc.error, "detail": exc.message})

    @app.exception_handler(InvalidRequestError)
    async def invalid_request(request: Request, exc: InvalidRequestError) -> JSONResponse:
        status = 404 if exc.error == "UnknownService" else 400
        return JSONResponse(status_code=status, content={"error": exc.error, "detail": exc.cause})

    @app.exception_handler(BreakerError)
    async def breaker_unreachable(request: Request, exc: BreakerError) -> JSONResponse:
        return JSONResponse(status_code=500, content={"error": type(exc).__name__, "detail": str(exc)})

    return app


app = create_app()
