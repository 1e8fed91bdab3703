"""Evaluations: a graph version (or two, paired) scored on a dataset, as a durable run kind."""
