"""The breaker at high traffic: a scale model and the runs on the emulator that check it.

Modules: ``model`` (pure: which AWS limit binds first for a call rate and a latency, from the
documented figures in ``model.AWS_LIMITS``), ``throttling`` (the emulator with DynamoDB throttling
injected on the circuit item), ``__main__`` (``python -m bench.scale``: the model's tables and the
emulator runs, printed as numbers and ratios). ``docs/scale.md`` explains them.
"""
