"""circuit-breaker: the client, the ``breaker`` CLI, and the local emulator."""
