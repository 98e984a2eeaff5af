"""The demo ``payment`` service: a caller steers it through its payload to watch the breaker work.

    {"mode": "ok"}                       answers at once (the default)
    {"mode": "ok", "delayMs": 100}       answers after 100 ms, like a healthy payment API
    {"mode": "slow", "delayMs": 5000}    takes 5 s: past the breaker's timeout
    {"mode": "fail", "message": "..."}   raises PaymentFailed (the service is down)
    {"mode": "decline"}                  raises PaymentDeclined (the card was refused: the caller's
                                         problem, registered as an ignored error by the demo stack)

Any other field is echoed back, so a caller can see its payload went through unchanged.
"""

from __future__ import annotations

import time
from typing import Any


class PaymentFailed(RuntimeError):
    """The demo service's own failure; the workflow sees ``PaymentFailed`` as the error name."""


class PaymentDeclined(ValueError):
    """The card was refused: an answer about this one payment, not a sign the service is down."""


class InvalidDemoRequest(ValueError):
    """A payload the demo does not understand."""


_MODES = ("ok", "slow", "fail", "decline")


def handler(event: Any, context: Any) -> dict[str, Any]:
    if not isinstance(event, dict):
        raise InvalidDemoRequest(f"the payload must be a JSON object, not {type(event).__name__}")
    mode = event.get("mode", "ok")
    if mode not in _MODES:
        raise InvalidDemoRequest(f"mode must be one of {', '.join(_MODES)}, not {mode!r}")
    delay_ms = event.get("delayMs", 5000 if mode == "slow" else 0)
    if not isinstance(delay_ms, int) or isinstance(delay_ms, bool) or not 0 <= delay_ms <= 60_000:
        raise InvalidDemoRequest(f"delayMs must be a whole number from 0 to 60000, not {delay_ms!r}")
    if delay_ms:
        time.sleep(delay_ms / 1000)
    if mode == "fail":
        raise PaymentFailed(str(event.get("message", "the payment provider is down")))
    if mode == "decline":
        raise PaymentDeclined(str(event.get("message", "the card was declined")))
    return {"status": "paid", "service": "payment", "echo": event}
