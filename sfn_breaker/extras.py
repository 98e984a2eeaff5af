"""Which extra installs which module, and one way to say that an extra is missing.

Every place that needs an extra says the same thing, naming the extra, the module that is not
installed and the command that installs it::

    sfn_breaker.cdk needs the cdk extra (aws_cdk is not installed): pip install "sfn-breaker[cdk]"

Standard library only: the CLI uses it before Typer and Rich are known to be there.
"""

from __future__ import annotations

import importlib.util
import sys

_OWN_MODULES = {
    "cdk": ("aws_cdk", "constructs", "jsii"),
    "cli": ("typer", "rich", "click"),
    "local": ("moto", "aws_lambda_powertools", "matplotlib", "werkzeug", "flask", "flask_cors"),
}
_INCLUDES = {"local": ("cdk", "cli")}

#: What the emulator needs to run (``LocalBreaker``, ``breaker local up``), in the order checked.
EMULATOR_MODULES = ("moto", "aws_cdk", "constructs", "aws_lambda_powertools")


def modules_of(extra: str) -> frozenset[str]:
    """The top-level modules that ``extra`` installs, with those of the extras it includes."""
    included = (module for part in (extra, *_INCLUDES.get(extra, ())) for module in _OWN_MODULES[part])
    return frozenset(included)


def missing_extra_message(needed_by: str, extra: str, module: str) -> str:
    return f'{needed_by} needs the {extra} extra ({module} is not installed): pip install "sfn-breaker[{extra}]"'


def missing_extra(exc: ModuleNotFoundError, *, needed_by: str, extra: str) -> ModuleNotFoundError | None:
    """``exc`` said in the words above when the module it lacks comes with ``extra``, else ``None``
    (a module missing for another reason is not this package's to explain)."""
    module = (exc.name or "").partition(".")[0]
    if module not in modules_of(extra):
        return None
    return ModuleNotFoundError(missing_extra_message(needed_by, extra, module), name=exc.name)


def first_missing(modules: tuple[str, ...]) -> str | None:
    """The first of ``modules`` that cannot be imported, found without importing any of them
    (importing aws_cdk starts a Node.js process)."""
    for module in modules:
        if module in sys.modules:
            if sys.modules[module] is None:  # import blocked, as Python's own import system reads it
                return module
            continue
        if importlib.util.find_spec(module) is None:
            return module
    return None


def require(modules: tuple[str, ...], *, needed_by: str, extra: str) -> None:
    """Raise ``ModuleNotFoundError`` in the words above when one of ``modules`` is not installed."""
    module = first_missing(modules)
    if module is not None:
        raise ModuleNotFoundError(missing_extra_message(needed_by, extra, module), name=module)
