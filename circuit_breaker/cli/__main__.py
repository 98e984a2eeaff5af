"""``python -m circuit_breaker.cli``: the ``breaker`` command."""

from circuit_breaker.cli import main

if __name__ == "__main__":
    main()
