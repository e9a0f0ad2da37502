"""Concurrency, streaming, progress, interrupt and bulk tests (issue 4)."""
