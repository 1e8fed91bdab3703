"""Observability: metrics, health, event streams and traces."""
