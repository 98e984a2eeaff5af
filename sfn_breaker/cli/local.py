"""``breaker local up`` and ``breaker local down``: the emulator in the background.

The emulator modules are imported inside the commands: they need the ``local`` extra, which
the other commands do not.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer

from sfn_breaker.cli.app import EXIT_ERROR, err, friendly_errors, local_app, out, usage_error
from sfn_breaker.contract import DEFAULT_STACK_NAME, EMULATOR_ACCESS_KEY, EMULATOR_SECRET_KEY
from sfn_breaker.extras import EMULATOR_MODULES, first_missing, missing_extra_message
from sfn_breaker.local.state import EmulatorState, Origin  # the standard library only


@local_app.command("up")
@friendly_errors
def local_up(
    port: Annotated[int, typer.Option("--port", help="The loopback port; 0 picks a free one.")] = 0,
    setting: Annotated[
        list[str] | None,
        typer.Option(
            "--setting",
            "-s",
            help="A breaker setting for the demo stack, NAME=VALUE (e.g. openDurationSeconds=10); repeatable.",
        ),
    ] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for it to be ready.")] = 180.0,
    app_command: Annotated[
        str | None,
        typer.Option(
            "--app",
            help='Your CDK app, as cdk.json says it (e.g. "python3 app.py"), run in this folder; '
            "its stack with a CircuitBreaker is deployed and your Python services run in the emulator.",
        ),
    ] = None,
    assembly: Annotated[
        Path | None, typer.Option("--assembly", help="An already synthesized cloud assembly (e.g. cdk.out).")
    ] = None,
    stack: Annotated[
        str | None,
        typer.Option("--stack", help="The stack of the app or assembly to run (needed when it has several)."),
    ] = None,
    demo: Annotated[
        bool, typer.Option("--demo", help="Run the package's demo stack, even in a folder with a cdk.json.")
    ] = False,
) -> None:
    """Start the emulator in the background: synthesize the app, deploy it into moto, serve it.

    The app is --app, or --assembly, or else this folder's cdk.json app (as `cdk synth` runs it);
    with no cdk.json here (or with --demo), the package's demo stack.
    """
    from sfn_breaker.local.assembly import AppError, require_node
    from sfn_breaker.local.background import start_background
    from sfn_breaker.local.state import default_state_file

    # The emulator runs in another process, which would only log what it lacks: check here.
    missing = first_missing(EMULATOR_MODULES)
    if missing is not None:
        err.print(f"error: {missing_extra_message('`breaker local up`', 'local', missing)}", markup=False)
        raise typer.Exit(EXIT_ERROR)

    if app_command is not None and assembly is not None:
        usage_error("give --app or --assembly, not both")
    if demo and (app_command is not None or assembly is not None or stack is not None):
        usage_error("--demo runs the package's demo stack: give it without --app, --assembly or --stack")
    state_file = default_state_file()
    try:
        request = _requested(app_command, assembly, stack, demo)
        if setting:
            if not request.is_demo:
                usage_error(
                    "--setting applies to the demo stack; set your own app's settings in its code or cdk.json"
                    + ("" if app_command or assembly or stack else f" (or add --demo: {Path.cwd()} has a cdk.json)")
                )
            request = replace(request, settings={"circuit-breaker": _checked(_settings(setting))})

        running = EmulatorState.read(state_file)
        if running is not None and running.is_alive():
            _already_running(running, request, stack, port)
            return
        if request.assembly is None:
            require_node()  # before anything starts: the synth runs the CDK on Node.js
        chosen = _own_assembly(request, stack)
        message = (
            "Starting the local emulator: synthesizing the demo app and deploying it into moto..."
            if chosen is None
            else f"Starting the local emulator: deploying stack {chosen[1]} into moto..."
        )
        with err.status(message):
            started = start_background(
                state_file,
                port=port,
                context_overrides=request.settings,
                assembly_dir=chosen[0] if chosen else None,
                stack_name=chosen[1] if chosen else None,
                app=request if request.app is not None else None,
                timeout=timeout,
            )
    except AppError as exc:
        usage_error(str(exc))
    state = started.state
    if started.already_running:  # another `breaker local up` won the race
        _already_running(state, request, stack, port)
        return
    out.print(f"Local emulator running at {state.endpoint_url} (pid {state.pid}).", markup=False)
    out.print(f"It runs stack {state.stack_name}, from {state.origin.describe()}.", markup=False)
    out.print(
        f"The breaker CLI uses it when no AWS credentials are configured (or with --local). Its log: {state.log_file}\n",
        markup=False,
    )
    out.print(client_instructions(state.endpoint_url, state.region, state.stack_name), markup=False)


def _requested(app_command: str | None, assembly: Path | None, stack: str | None, demo: bool) -> Origin:
    """What ``breaker local up`` is asked to run: ``--app``, ``--assembly``, or else this folder's
    cdk.json app (as ``cdk synth`` would run it), or else (or with ``--demo``) the demo app."""
    from sfn_breaker.local.assembly import AppError, app_from_cdk_json

    folder = Path.cwd().resolve()
    if demo:
        return Origin()
    if assembly is not None:
        return Origin(assembly=str(assembly.resolve()))
    if app_command is not None:
        if not app_command.strip():
            raise AppError('--app is empty: give the command that runs your CDK app, e.g. --app "python3 app.py"')
        return Origin(app=app_command, app_dir=str(folder))
    cdk_json_app = app_from_cdk_json(folder)
    if cdk_json_app is not None:
        return Origin(app=cdk_json_app, app_dir=str(folder))
    if (folder / "cdk.json").is_file():
        raise AppError(
            f'{folder / "cdk.json"} names no "app": give --app "python3 app.py", or --demo for the demo stack'
        )
    if stack is not None:
        raise AppError(
            f'no CDK app: give --app "python3 app.py" or --assembly, or run it where cdk.json is (not in {folder})'
        )
    return Origin()


def _already_running(state: EmulatorState, request: Origin, stack: str | None, port: int) -> None:
    """An emulator already runs: say what, and whether it is what was asked (exit 0), or not (exit 1)."""
    running = f"stack {state.stack_name} ({state.origin.describe()}) at {state.endpoint_url} (pid {state.pid})"
    same = (
        state.origin == request
        and (stack is None or stack == state.stack_name)
        and (not port or state.endpoint_url.endswith(f":{port}"))
    )
    if not same:
        err.print(
            f"error: the local emulator already runs {running}, not {f'stack {stack} of ' if stack else ''}"
            f"{request.describe()}: run `breaker local down` first.",
            markup=False,
        )
        raise typer.Exit(EXIT_ERROR)
    out.print(
        f"Local emulator already running {running}. It runs the code it started with: "
        "for changed code, run `breaker local down`, then `breaker local up` again.",
        markup=False,
    )


def _own_assembly(request: Origin, stack: str | None) -> tuple[Path, str] | None:
    """The user's cloud assembly and stack to run (synthesizing the app into ./cdk.out, as
    ``cdk synth`` does), or ``None`` for the demo; raises ``AppError`` with what is wrong."""
    from sfn_breaker.local.assembly import choose_stack, synth_app

    if request.is_demo:
        return None
    if request.assembly is not None:
        directory = Path(request.assembly)
    else:
        assert request.app is not None and request.app_dir is not None
        folder = Path(request.app_dir)
        with err.status(f"Synthesizing `{request.app}` into cdk.out..."):
            directory = synth_app(request.app, folder, folder / "cdk.out")
    chosen = choose_stack(directory, stack)
    return chosen.directory, chosen.stack_name


def client_instructions(endpoint_url: str, region: str, stack_name: str = DEFAULT_STACK_NAME) -> str:
    """What each common AWS client needs to reach the emulator (the README shows the same)."""
    return f"""\
Other AWS clients: set some credentials and a region (it accepts any); StartSyncExecution must not get the "sync-" host prefix.
  AWS CLI and boto3 (environment):
    export AWS_ENDPOINT_URL={endpoint_url} AWS_DEFAULT_REGION={region} AWS_REGION={region} \\
           AWS_ACCESS_KEY_ID={EMULATOR_ACCESS_KEY} AWS_SECRET_ACCESS_KEY={EMULATOR_SECRET_KEY} AWS_DISABLE_HOST_PREFIX_INJECTION=true
    aws cloudformation describe-stacks --stack-name {stack_name}
  boto3 (in code):
    boto3.client("stepfunctions", endpoint_url="{endpoint_url}", region_name="{region}",
                 aws_access_key_id="{EMULATOR_ACCESS_KEY}", aws_secret_access_key="{EMULATOR_SECRET_KEY}",
                 config=botocore.config.Config(inject_host_prefix=False))
  AWS SDK for JavaScript v3 (it reads the variables above, but not AWS_DISABLE_HOST_PREFIX_INJECTION):
    new SFNClient({{ endpoint: "{endpoint_url}", region: "{region}",
                    credentials: {{ accessKeyId: "{EMULATOR_ACCESS_KEY}", secretAccessKey: "{EMULATOR_SECRET_KEY}" }},
                    disableHostPrefix: true }})"""


def _settings(pairs: list[str]) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name.strip():
            usage_error(f"--setting takes NAME=VALUE, e.g. openDurationSeconds=10, not {pair!r}")
        try:
            settings[name.strip()] = json.loads(raw)
        except ValueError:
            settings[name.strip()] = raw
    return settings


def _checked(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` when the breaker accepts them; else one line and exit 2, before anything starts."""
    from dataclasses import fields

    settings_module = _settings_module()
    BreakerSettings = settings_module.BreakerSettings
    SettingsError = settings_module.SettingsError
    settings_from_context = settings_module.settings_from_context

    known = [_camel(field.name) for field in fields(BreakerSettings)]
    for name in settings:
        if name != "services" and _snake(name) not in {field.name for field in fields(BreakerSettings)}:
            usage_error(f"unknown setting {name!r} for --setting; known: {', '.join(known)}")
    try:
        settings_from_context(settings)
    except SettingsError as exc:
        message = str(exc)
        for field in fields(BreakerSettings):  # the names as the README writes them
            message = re.sub(rf"\b{field.name}\b", _camel(field.name), message)
        usage_error(f"--setting: {message}")
    return settings


def _settings_module() -> Any:
    """``sfn_breaker.cdk.settings``, the construct's settings, without loading the CDK.

    Importing it the usual way runs ``sfn_breaker.cdk``'s ``__init__``, which loads the AWS
    CDK: jsii starts Node (seconds), and Node prints its end-of-life banner as byte strings. The
    module itself needs only the standard library, ``contract`` and ``core``, so it is loaded
    from its file, under a private name.
    """
    import importlib.util
    import sys

    name = "sfn_breaker.cli._construct_settings"
    if name in sys.modules:
        return sys.modules[name]
    package = importlib.util.find_spec("sfn_breaker.cdk")
    assert package is not None and package.submodule_search_locations is not None
    spec = importlib.util.spec_from_file_location(name, Path(package.submodule_search_locations[0]) / "settings.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


@local_app.command("down")
@friendly_errors
def local_down() -> None:
    """Stop the background emulator (its circuits and executions are gone with it)."""
    from sfn_breaker.local.background import stop_background
    from sfn_breaker.local.state import default_state_file

    state = stop_background(default_state_file())
    if state is None:
        out.print("No local emulator is running.")
    else:
        out.print(f"Local emulator at {state.endpoint_url} (pid {state.pid}) stopped.", markup=False)
