"""Lambda entry points: each parses its input, calls the rules, and uses ``breaker_core.store``."""
