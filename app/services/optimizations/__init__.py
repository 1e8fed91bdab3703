"""Optimization runs: a graph version's parameters trained on stored datasets, as a durable
run kind (``jobs.kind = "optimization"``)."""
