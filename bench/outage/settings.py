"""The scenario, and how it is compressed in time.

Unscaled, it is this project's defaults and a plausible outage: a 3 s timeout, circuits open for
30 s (Powertools' default ``recovery_timeout`` too), 9 s healthy, 45 s down, 36 s recovered.
``scale`` multiplies every duration so the whole benchmark fits in about five minutes; values a
design keeps in whole seconds (workflow timeouts, Wait and Retry intervals, epoch-second
expiries, Powertools' cache age) are rounded to whole seconds, and retry intervals, which cannot
go below 1 s in either workflow, are not scaled at all (each design keeps its published retry
policy). The service's own latency is not scaled either.
"""

from __future__ import annotations

from dataclasses import dataclass

#: This project's defaults (``BreakerSettings``), shared by every strategy.
UNSCALED_TIMEOUT_SECONDS = 3
UNSCALED_OPEN_SECONDS = 30
#: Powertools' ``CircuitBreakerConfig.local_cache_max_age`` default.
UNSCALED_POWERTOOLS_CACHE_SECONDS = 5
UNSCALED_PHASES = (9.0, 45.0, 36.0)
DEFAULT_SCALE = 1 / 3

MODES = ("fail", "hang")
STRATEGIES = ("no breaker", "reference design", "Powertools", "this project")


@dataclass(frozen=True, kw_only=True)
class Settings:
    callers: int = 20
    scale: float = DEFAULT_SCALE
    modes: tuple[str, ...] = MODES
    strategies: tuple[str, ...] = STRATEGIES
    service_seconds: float = 0.1
    """How long the healthy service takes to answer."""
    pause_seconds: float = 0.1
    """How long a caller waits after an answer before calling again."""
    phases: tuple[float, float, float] | None = None
    """Healthy, down and recovered, in seconds; by default the unscaled phases times ``scale``."""
    open_seconds: int | None = None
    timeout_seconds: int | None = None
    seed: int = 7

    def __post_init__(self) -> None:
        unknown = set(self.modes) - set(MODES) or set(self.strategies) - set(STRATEGIES)
        if unknown:
            raise ValueError(f"unknown mode or strategy: {', '.join(sorted(unknown))}")
        if self.callers < 1 or self.scale <= 0:
            raise ValueError("callers and scale must be positive")

    @property
    def timeout(self) -> int:
        """The one service timeout every strategy uses (whole seconds)."""
        return self.timeout_seconds or max(1, round(UNSCALED_TIMEOUT_SECONDS * self.scale))

    @property
    def open_period(self) -> int:
        """The one open period every breaker uses (whole seconds)."""
        return self.open_seconds or max(1, round(UNSCALED_OPEN_SECONDS * self.scale))

    @property
    def powertools_cache(self) -> int:
        return round(UNSCALED_POWERTOOLS_CACHE_SECONDS * self.scale)

    @property
    def hang_seconds(self) -> float:
        """How long a hanging call blocks before it answers, too late: three timeouts."""
        return 3.0 * self.timeout

    @property
    def healthy(self) -> float:
        return self._phases[0]

    @property
    def outage(self) -> float:
        return self._phases[1]

    @property
    def recovery(self) -> float:
        return self._phases[2]

    @property
    def _phases(self) -> tuple[float, float, float]:
        if self.phases is not None:
            return self.phases
        healthy, down, recovered = (round(p * self.scale, 1) for p in UNSCALED_PHASES)
        return healthy, down, recovered
