"""The CDK construct (installed as ``sfn_breaker.cdk``; needs ``pip install "sfn-breaker[cdk]"``).

::

    from sfn_breaker.cdk import BreakerSettings, CircuitBreaker, ProtectedService

Modules: ``breaker`` (the ``CircuitBreaker`` construct), ``table``, ``functions``, ``workflow``
and ``monitoring`` (the constructs it is made of; ``metrics``: where each metric comes from,
``dashboard``), ``settings`` (settings, defaults and CDK context),
``assets`` (the workflow file and the Lambda code, found inside the package), ``nag`` (cdk-nag
suppressions), and the demo: ``demo_stack`` and ``demo_app`` (with ``feature_flags``, those ``cdk init``
writes).
"""

from __future__ import annotations

from sfn_breaker.extras import missing_extra

try:
    import aws_cdk  # noqa: F401
    import constructs  # noqa: F401
except ModuleNotFoundError as exc:  # pragma: no cover - depends on the installation
    # One traceback that names the extra, not two chained ones.
    raise (missing_extra(exc, needed_by="sfn_breaker.cdk", extra="cdk") or exc) from None

from .breaker import CircuitBreaker, ProtectedService
from .settings import CONTEXT_KEY, BreakerSettings, SettingsError, settings_from_context

__all__ = [
    "CONTEXT_KEY",
    "BreakerSettings",
    "CircuitBreaker",
    "ProtectedService",
    "SettingsError",
    "settings_from_context",
]
