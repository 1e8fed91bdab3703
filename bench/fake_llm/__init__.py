"""Fake OpenAI/Anthropic-compatible LLM server for tests and benchmarks.

Deterministic replies, scripted faults, latency, a server-side request cap and a
control API. Run it with `python -m bench.fake_llm`.
"""

from .behaviour import Behaviour, BehaviourError, Rule, parse_behaviour
from .server import STATE_KEY, create_app, serve

__all__ = [
    "STATE_KEY",
    "Behaviour",
    "BehaviourError",
    "Rule",
    "create_app",
    "parse_behaviour",
    "serve",
]
