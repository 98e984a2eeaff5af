"""Before the outage: a declined card is the caller's problem, not an outage.

The demo stack registers ``PaymentDeclined`` as an ignored error of ``payment``: such an answer
ends the call at once with the service's own error, is never retried, and never counts towards
opening the circuit. The demo shows it with a few declined cards before the story begins.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Console

from sfn_breaker.client import BreakerClient
from sfn_breaker.contract import DEMO_SERVICE
from sfn_breaker.core.model import CircuitState
from sfn_breaker.errors import ServiceCallError

DECLINED_CARDS = 5
DECLINED = "PaymentDeclined"


@dataclass(frozen=True)
class DeclineCheck:
    """What a few declined cards did: how many ended ``PaymentDeclined``, and the circuit after them."""

    calls: int
    declined: int
    state_after: CircuitState


def show_declines(client: BreakerClient, console: Console, count: int = DECLINED_CARDS) -> DeclineCheck:
    declined = 0
    for card in range(1, count + 1):
        try:
            client.call(DEMO_SERVICE, {"mode": "decline", "message": f"card {card} was declined"})
        except ServiceCallError as exc:
            if exc.error != DECLINED:
                raise
            declined += 1
    state = client.status(DEMO_SERVICE).state
    console.print(
        f"First, {count} declined cards: {declined} ended {DECLINED} at once (an ignored error: "
        "not retried, not counted)."
    )
    console.print(f"The payment circuit is still {state.value}.")
    return DeclineCheck(calls=count, declined=declined, state_after=state)
