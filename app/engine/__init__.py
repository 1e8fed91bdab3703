"""inf-engine's library face: PyTorch-style LLM pipelines, traced into graphs, run concurrently.

>>> from app.engine import InferenceModule, LLMInference, ResourceConfig, run_sync
>>> class Shout(InferenceModule):
...     def __init__(self):
...         super().__init__()
...         self.llm = LLMInference("fast", system_prompt="Answer loudly.")
...     def forward(self, text):
...         return self.llm(f"Say: {text}")
>>> cfg = ResourceConfig.from_dict({"endpoints": {"fast": {"provider": "simulated", "model": "m"}}})
>>> run_sync(Shout(), "hi", resources=cfg).startswith("[simulated")
True
"""

from app.engine.checkpoint import Checkpoint, CheckpointStore, FileCheckpointStore
from app.engine.clock import Clock, FakeClock, MonotonicClock
from app.engine.errors import (
    CheckpointError,
    ConfigError,
    EngineError,
    ExecutionError,
    GraphIssue,
    GraphValidationError,
    InputError,
    LLMCallError,
    MalformedResponseError,
    NodeError,
    NodeFailure,
    OutputLimitError,
    PermanentLLMError,
    RateLimitedError,
    TraceError,
    TransientLLMError,
)
from app.engine.execution.api import resume, run, run_batch, run_sync, stream
from app.engine.execution.limits import OutputLimits
from app.engine.execution.observer import Observer
from app.engine.execution.pending import HumanWait, Pending
from app.engine.execution.settings import ExecutionSettings
from app.engine.graph import (
    Graph,
    GraphLimits,
    canonical_json,
    graph_hash,
    load_graph,
    to_data,
    to_dot,
)
from app.engine.llm import LLMClient, LLMRequest, LLMResponse, RateLimitInfo
from app.engine.module import InferenceModule, LLMInference
from app.engine.parameter import Parameter
from app.engine.profiler import TraceProfiler
from app.engine.records import (
    BatchResult,
    ForwardRecord,
    LLMUsage,
    NodeRecord,
    NodeStatus,
    RunResult,
)
from app.engine.resources.config import EndpointConfig, ResourceConfig
from app.engine.resources.fairness import Flow
from app.engine.resources.manager import ResourceManager, close_shared_managers, shared_manager
from app.engine.tracing.api import trace
from app.engine.tracing.ops import branch, classify, human, match_branch, parse_json

__all__ = [
    "BatchResult",
    "Checkpoint",
    "CheckpointError",
    "CheckpointStore",
    "Clock",
    "ConfigError",
    "EndpointConfig",
    "EngineError",
    "ExecutionError",
    "ExecutionSettings",
    "FakeClock",
    "FileCheckpointStore",
    "Flow",
    "ForwardRecord",
    "Graph",
    "GraphIssue",
    "GraphLimits",
    "GraphValidationError",
    "HumanWait",
    "InferenceModule",
    "InputError",
    "LLMCallError",
    "LLMClient",
    "LLMInference",
    "LLMRequest",
    "LLMResponse",
    "LLMUsage",
    "MalformedResponseError",
    "MonotonicClock",
    "NodeError",
    "NodeFailure",
    "NodeRecord",
    "NodeStatus",
    "Observer",
    "OutputLimitError",
    "OutputLimits",
    "Parameter",
    "Pending",
    "PermanentLLMError",
    "RateLimitInfo",
    "RateLimitedError",
    "ResourceConfig",
    "ResourceManager",
    "RunResult",
    "TraceError",
    "TraceProfiler",
    "TransientLLMError",
    "branch",
    "canonical_json",
    "classify",
    "close_shared_managers",
    "graph_hash",
    "human",
    "load_graph",
    "match_branch",
    "parse_json",
    "resume",
    "run",
    "run_batch",
    "run_sync",
    "shared_manager",
    "stream",
    "to_data",
    "to_dot",
    "trace",
]
