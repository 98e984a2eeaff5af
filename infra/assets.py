"""What the construct deploys from inside the installed package: the workflow and the Lambda code.

Both are found with ``importlib.resources``, so the construct synthesizes the same way from a
wheel in site-packages, an editable install, or a checkout, and never from paths relative to one.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

DEFINITION_FILE = "circuit_breaker.asl.json"

#: What the breaker's own functions import, laid out as in the package: its ``__init__`` (which
#: imports nothing eagerly), the pure rules and the store, and the handlers.
RUNTIME_PACKAGES = ("sfn_breaker.core", "sfn_breaker.lambdas")
#: The demo stack's ``payment`` service: deployed on its own; no breaker function needs it.
DEMO_SERVICE_FILE = "demo_service.py"
NOT_SHIPPED = frozenset({DEMO_SERVICE_FILE})


def workflow_definition() -> str:
    """The text of ``statemachine/circuit_breaker.asl.json``, as installed."""
    return resources.files("sfn_breaker.statemachine").joinpath(DEFINITION_FILE).read_text(encoding="utf-8")


@functools.cache
def function_code(*, keep: bool = False) -> Path:
    """A directory holding exactly the code of the breaker's functions, made once per process."""
    root = _staging_directory(keep)
    package = root / "sfn_breaker"
    package.mkdir()
    (package / "__init__.py").write_bytes(resources.files("sfn_breaker").joinpath("__init__.py").read_bytes())
    for name in RUNTIME_PACKAGES:
        _copy_python(resources.files(name), root.joinpath(*name.split(".")))
    return root


@functools.cache
def demo_service_code(*, keep: bool = False) -> Path:
    """A directory holding only ``demo_service.py``, the demo stack's ``payment`` service."""
    root = _staging_directory(keep)
    source = resources.files("sfn_breaker.lambdas").joinpath(DEMO_SERVICE_FILE)
    (root / DEMO_SERVICE_FILE).write_bytes(source.read_bytes())
    return root


def _staging_directory(keep: bool) -> Path:
    """A new directory for an asset's files.

    CDK copies an asset into the cloud assembly when the construct is built, so the directory
    is removed when this process exits, unless ``keep`` (asset staging turned off, as
    ``cdk synth --no-staging`` does for SAM: the template then points at this directory).
    """
    root = Path(tempfile.mkdtemp(prefix="sfn-breaker-asset-"))
    if not keep:
        atexit.register(shutil.rmtree, root, ignore_errors=True)
    return root


def _copy_python(source: Traversable, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for entry in source.iterdir():
        if entry.is_dir() and entry.name != "__pycache__":
            _copy_python(entry, target / entry.name)
        elif entry.is_file() and entry.name.endswith(".py") and entry.name not in NOT_SHIPPED:
            (target / entry.name).write_bytes(entry.read_bytes())
