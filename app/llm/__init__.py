"""Provider clients the engine calls: OpenAI, Azure OpenAI, OpenAI-compatible, Anthropic and
simulated.

Each implements :class:`app.engine.llm.LLMClient` over a pooled ``aiohttp`` session (one per
base URL per event loop) and maps every failure to the engine's ``LLMCallError`` classes.
The engine finds them through the ``inf_engine.providers`` entry points in
:mod:`app.llm.providers`.
"""

from app.llm.anthropic import AnthropicClient
from app.llm.errors import (
    LLMConfigError,
    LLMError,
    MissingAPIKeyError,
    ProviderMalformedError,
    ProviderPermanentError,
    ProviderRateLimitedError,
    ProviderTransientError,
)
from app.llm.openai import OpenAIClient
from app.llm.pool import SessionLease, SessionPool, close_all, default_pool
from app.llm.providers import (
    anthropic_client,
    azure_client,
    openai_client,
    openai_compatible_client,
    simulated_client,
)
from app.llm.simulated import SimulatedClient, simulate

__all__ = [
    "AnthropicClient",
    "LLMConfigError",
    "LLMError",
    "MissingAPIKeyError",
    "OpenAIClient",
    "ProviderMalformedError",
    "ProviderPermanentError",
    "ProviderRateLimitedError",
    "ProviderTransientError",
    "SessionLease",
    "SessionPool",
    "SimulatedClient",
    "anthropic_client",
    "azure_client",
    "close_all",
    "default_pool",
    "openai_client",
    "openai_compatible_client",
    "simulate",
    "simulated_client",
]
