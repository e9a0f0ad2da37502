"""The benchmarks (`scripts/bench`, i.e. `python -m benchmarks.run`): outside the pass/fail tests."""
