"""The pure rules and settings, without AWS."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from sfn_breaker.cdk.settings import BreakerSettings, SettingsError, settings_from_context, validate_service_name
from sfn_breaker.cdk.workflow import PROBE_LEASE_MARGIN_SECONDS, service_config
from sfn_breaker.core import model, reading
from sfn_breaker.core.model import CircuitState, CorruptItemError
from sfn_breaker.core.transitions import Policy, failure_expiry

NOW = 1_800_000_000  # 2027-01-15T08:00:00Z


class TestIsoMirror:
    def test_layout_is_fixed_width_with_milliseconds(self) -> None:
        assert reading.iso_timestamp(NOW) == "2027-01-15T08:00:00.000Z"

    @pytest.mark.parametrize(
        ("clock", "open"),
        [
            ("2027-01-15T07:59:59.999Z", True),  # AWS's layout, just before the expiry
            ("2027-01-15T08:00:00.000Z", False),  # at the expiry: closed again
            ("2027-01-15T08:00:00.001Z", False),
            ("2027-01-15T07:59:59.999999+00:00", True),  # moto's layout
            ("2027-01-15T08:00:00.001000+00:00", False),  # exact to the millisecond
            ("2027-01-15T08:00:00Z", False),  # a clock without fractions
        ],
    )
    def test_string_order_is_time_order_against_both_clock_layouts(self, clock: str, open: bool) -> None:
        # The workflow's Choice opens the circuit while OpenUntil > now, comparing strings.
        assert (reading.iso_timestamp(NOW) > clock) is open


class TestParseExpiry:
    @pytest.mark.parametrize("raw", [NOW, Decimal(NOW), float(NOW)])
    def test_numbers_are_epoch_seconds(self, raw: object) -> None:
        assert reading.parse_expiry(raw) == NOW

    def test_fractions_round_up(self) -> None:
        assert reading.parse_expiry(Decimal("1800000000.2")) == NOW + 1

    def test_absent_is_none(self) -> None:
        assert reading.parse_expiry(None) is None

    @pytest.mark.parametrize("raw", ["1800000000", "tomorrow", True, -5, NOW * 1000, Decimal("NaN")])
    def test_anything_else_is_corrupt(self, raw: object) -> None:
        with pytest.raises(CorruptItemError):
            reading.parse_expiry(raw)


class TestView:
    def test_no_item_is_closed(self) -> None:
        view = reading.view("payment", None, NOW)
        assert (view.service, view.state) == ("payment", CircuitState.CLOSED)

    def test_future_expiry_is_open_until_then(self) -> None:
        view = reading.view("payment", {model.EXPIRY: Decimal(NOW + 30), model.LAST_ERROR: "Boom"}, NOW)
        assert (view.state, view.open_until, view.last_error) == (CircuitState.OPEN, NOW + 30, "Boom")
        assert view.service == "payment"

    def test_past_expiry_is_half_open_whether_or_not_ttl_deleted_it(self) -> None:
        assert reading.view("payment", {model.EXPIRY: Decimal(NOW - 1)}, NOW).state is CircuitState.HALF_OPEN

    def test_expiry_equal_to_now_is_no_longer_open(self) -> None:
        assert reading.view("payment", {model.EXPIRY: NOW}, NOW).state is CircuitState.HALF_OPEN

    def test_forced_open_without_expiry_is_held_open(self) -> None:
        view = reading.view("payment", {model.FORCED: "OPEN"}, NOW)
        assert (view.state, view.open_until) == (CircuitState.FORCED_OPEN, None)

    def test_forced_open_until_a_time(self) -> None:
        view = reading.view("payment", {model.FORCED: "OPEN", model.EXPIRY: NOW + 60}, NOW)
        assert (view.state, view.open_until) == (CircuitState.FORCED_OPEN, NOW + 60)
        assert (
            reading.view("payment", {model.FORCED: "OPEN", model.EXPIRY: NOW - 1}, NOW).state is CircuitState.HALF_OPEN
        )

    def test_a_forced_open_window_ends_at_its_expiry_like_any_open_period(self) -> None:
        view = reading.view("payment", {model.FORCED: "OPEN", model.EXPIRY: NOW}, NOW)
        assert (view.state, view.open_until) == (CircuitState.HALF_OPEN, NOW)

    def test_the_last_failure_is_shown_as_stored(self) -> None:
        item = {
            model.EXPIRY: NOW + 5,
            model.LAST_ERROR: "PaymentFailed",
            model.LAST_CAUSE: "card declined",
            model.LAST_FAILURE_AT: "2027-01-15T07:59:58.000Z",
        }
        view = reading.view("payment", item, NOW)
        assert (view.last_error, view.last_cause, view.last_failure_at) == (
            "PaymentFailed",
            "card declined",
            "2027-01-15T07:59:58.000Z",
        )

    def test_forced_closed_wins_over_an_expiry(self) -> None:
        view = reading.view("payment", {model.FORCED: "CLOSED", model.EXPIRY: NOW + 60}, NOW)
        assert view.state is CircuitState.FORCED_CLOSED
        assert view.open_until is None  # forced closed: no open period to show

    def test_corrupt_expiry_is_closed_and_says_why(self) -> None:
        view = reading.view("payment", {model.EXPIRY: "tomorrow"}, NOW)
        assert view.state is CircuitState.CLOSED
        assert view.problem and "Number of epoch seconds" in view.problem

    def test_unknown_forced_value_is_reported_and_ignored(self) -> None:
        view = reading.view("payment", {model.FORCED: "MAYBE", model.EXPIRY: NOW + 5}, NOW)
        assert view.state is CircuitState.OPEN
        assert view.problem and "MAYBE" in view.problem


class TestMirror:
    def test_mirror_follows_the_expiry(self) -> None:
        assert reading.mirror_for({model.EXPIRY: Decimal(NOW)}) == "2027-01-15T08:00:00.000Z"

    def test_no_mirror_without_a_valid_expiry(self) -> None:
        assert reading.mirror_for({}) is None
        assert reading.mirror_for({model.EXPIRY: "soon"}) is None


def test_failure_expiry_counts_from_the_next_whole_second() -> None:
    assert failure_expiry(NOW + 0.4, 30) == NOW + 31


def test_long_causes_are_truncated_for_the_table() -> None:
    text = reading.truncate_cause("x" * 5000)
    assert len(text) == model.MAX_CAUSE_CHARS and text.endswith("(truncated)")


class TestSettings:
    def test_defaults(self) -> None:
        settings = BreakerSettings()
        assert (settings.open_duration_seconds, settings.service_timeout_seconds) == (30, 3)
        assert (settings.retry_interval_seconds, settings.backoff_rate, settings.max_attempts) == (1, 2.0, 3)
        assert settings.retry_delays() == [1, 2]

    def test_backoff_grows_and_is_capped(self) -> None:
        settings = BreakerSettings(retry_interval_seconds=2, backoff_rate=3, max_attempts=5, max_retry_delay_seconds=30)
        assert settings.retry_delays() == [2, 6, 18, 30]

    def test_one_attempt_means_no_retries(self) -> None:
        assert BreakerSettings(max_attempts=1).retry_delays() == []

    @pytest.mark.parametrize(
        "bad",
        [
            {"open_duration_seconds": 0},
            {"service_timeout_seconds": 0},
            {"backoff_rate": 0.5},
            {"max_attempts": 0},
            {"retry_interval_seconds": -1},
            {"service_timeout_seconds": 120, "max_attempts": 3},  # over an Express execution's 5 minutes
        ],
    )
    def test_unusable_values_fail_at_synth_time(self, bad: dict[str, object]) -> None:
        with pytest.raises(SettingsError):
            BreakerSettings(**bad)  # type: ignore[arg-type]

    def test_context_overrides_in_camel_case_and_per_service(self) -> None:
        settings, services = settings_from_context(
            {"openDurationSeconds": "60", "backoffRate": 1.5, "services": {"payment": {"maxAttempts": 5}}}
        )
        assert (settings.open_duration_seconds, settings.backoff_rate) == (60, 1.5)
        assert services == {"payment": {"maxAttempts": 5}}
        assert settings.with_overrides(services["payment"]).max_attempts == 5

    def test_context_given_as_json_on_the_command_line(self) -> None:
        settings, _ = settings_from_context('{"maxAttempts": 4}')
        assert settings.max_attempts == 4

    @pytest.mark.parametrize("context", [{"openDuration": 5}, {"maxAttempts": "three"}, {"maxAttempts": 2.5}, "{nope"])
    def test_bad_context_is_a_clear_error(self, context: object) -> None:
        with pytest.raises(SettingsError):
            settings_from_context(context)

    @pytest.mark.parametrize("name", ["", "has space", "x" * 65, "semi;colon", "quote'"])
    def test_service_names_are_checked(self, name: str) -> None:
        with pytest.raises(SettingsError):
            validate_service_name(name)


def test_the_mirror_is_utc_whatever_the_local_time_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "America/Los_Angeles")
    time.tzset()
    try:
        assert reading.iso_timestamp(NOW) == "2027-01-15T08:00:00.000Z"
    finally:
        monkeypatch.undo()
        time.tzset()


def test_the_policy_the_lambdas_read_is_the_one_the_construct_writes() -> None:
    """The contract between synth time and run time: ``$.Service.Policy`` in the workflow."""
    settings = BreakerSettings(
        open_duration_seconds=45,
        failure_threshold=3,
        failure_window_seconds=90,
        half_open_probes=2,
        open_duration_growth=1.5,
        max_open_duration_seconds=300,
        service_timeout_seconds=4,
        max_attempts=2,
        retry_interval_seconds=1,
    )
    written = service_config(settings, function_arn="arn:x", service="payment")["Policy"]

    assert Policy.from_event(written) == Policy(
        open_duration_seconds=45,
        failure_threshold=3,
        failure_window_seconds=90,
        half_open_probes=2,
        probe_lease_seconds=2 * 4 + 1 + PROBE_LEASE_MARGIN_SECONDS,
        open_duration_growth=1.5,
        max_open_duration_seconds=300,
    )
    with pytest.raises(KeyError):
        Policy.from_event({k: v for k, v in written.items() if k != "FailureWindowSeconds"})
