"""Where the ``breaker`` CLI finds the breaker: AWS, an endpoint, or the local emulator.

In order:

1. ``--local``: the emulator that ``breaker local up`` started (an error when none runs).
2. ``AWS_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_SFN``) is set: that endpoint, with the
   standard credentials, or placeholder ones when none are configured (an emulator accepts any).
3. AWS credentials are found by boto3's standard chain (environment, profile, SSO, instance
   role, ...): AWS, in the configured region.
4. Otherwise the running local emulator, so that against the emulator nothing needs configuring.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import boto3
from botocore.exceptions import BotoCoreError, ProfileNotFound

from sfn_breaker.client.connection import configured_endpoint, emulator_session
from sfn_breaker.contract import EMULATOR_ACCESS_KEY, EMULATOR_SECRET_KEY
from sfn_breaker.errors import NOTHING_CONFIGURED, ConfigurationError
from sfn_breaker.local.state import EmulatorState, default_state_file


class EmulatorNotRunningError(ConfigurationError):
    """The local emulator was asked for (or is the only option) but is not running."""


@dataclass(frozen=True)
class Target:
    """A resolved place to reach the breaker."""

    session: boto3.Session
    endpoint_url: str | None
    description: str
    emulator: EmulatorState | None = None


def resolve_target(*, local: bool = False, state_file: Path | None = None, profile: str | None = None) -> Target:
    """Where the CLI's commands go (see the module docstring); raises ``ConfigurationError``."""
    state_file = state_file or default_state_file()
    if local:
        return _emulator_target(state_file, required=True)

    endpoint = configured_endpoint()
    try:
        session = boto3.Session(profile_name=profile)
        credentials = session.get_credentials()
    except ProfileNotFound as exc:
        raise ConfigurationError(f"{exc}: check AWS_PROFILE or --profile.") from exc
    except BotoCoreError as exc:
        raise ConfigurationError(f"Could not load AWS credentials: {exc}") from exc

    if endpoint:
        session = emulator_session(session, has_credentials=credentials is not None, profile=profile)
        # boto3 reads AWS_ENDPOINT_URL itself; the endpoint is not passed on, so that the
        # per-service variables keep working as documented.
        return Target(session=session, endpoint_url=None, description=f"the endpoint {endpoint}")

    if credentials is not None:
        if session.region_name is None:
            raise ConfigurationError(
                "AWS credentials are configured but no region: set AWS_DEFAULT_REGION (boto3 does not read AWS_REGION) or run `aws configure`."
            )
        return Target(session=session, endpoint_url=None, description=f"AWS ({session.region_name})")

    return _emulator_target(state_file, required=False)


def _emulator_target(state_file: Path, *, required: bool) -> Target:
    state = EmulatorState.read(state_file)
    if state is None:
        if required:
            raise EmulatorNotRunningError("The local emulator is not running: start it with `breaker local up`.")
        raise ConfigurationError(NOTHING_CONFIGURED)
    if not state.is_alive():
        raise EmulatorNotRunningError(
            f"The local emulator recorded in {state_file} (pid {state.pid}, {state.endpoint_url}) is not running: "
            "start it again with `breaker local up`."
        )
    session = boto3.Session(
        aws_access_key_id=EMULATOR_ACCESS_KEY, aws_secret_access_key=EMULATOR_SECRET_KEY, region_name=state.region
    )
    return Target(
        session=session,
        endpoint_url=state.endpoint_url,
        description=f"the local emulator at {state.endpoint_url}",
        emulator=state,
    )
