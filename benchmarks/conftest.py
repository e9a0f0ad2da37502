"""The benchmarks are a script (`scripts/bench`), not tests: pytest collects nothing here."""

collect_ignore_glob = ["*.py"]
