"""``python -m sfn_breaker.cli``: the ``breaker`` command."""

from sfn_breaker.cli import main

if __name__ == "__main__":
    main()
