"""The fake LLM server handle, as tests import it."""

from bench.fake_llm.handle import FakeLLM, FakeLLMError

__all__ = ["FakeLLM", "FakeLLMError"]
