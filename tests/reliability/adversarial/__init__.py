"""Adversarial scenarios for issue 12: hostile servers, broken keys, odd hosts, bad data."""
