"""What every test folder shares, each defined once: the shell, the servers, image makers,
notebook runners, the sentinel key and captured display output.

Imported as `tests.support.<module>` (the repository root is on pytest's `pythonpath`); the
fixtures are registered for the whole suite by `tests/conftest.py`.
"""
