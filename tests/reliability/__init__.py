"""Reliability: injected faults, bad input (hypothesis), key safety, the wire contract (Prism), load."""
