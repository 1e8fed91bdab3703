"""The engine's exceptions: one root, one class per outcome.

EngineError
├── TraceError               forward() did something a graph cannot express
├── GraphValidationError     a graph is malformed (every issue names node and field)
├── ConfigError              resources or settings are inconsistent
├── InputError               run inputs do not match the graph's inputs
├── CheckpointError          a checkpoint cannot be used for this run
├── NodeError                one node failed (raised inside a run, collected by it)
│   ├── OutputLimitError     an output (or an item's outputs) went over a size limit
│   ├── BranchError          a branch cannot decide: a non-boolean condition, no case matched
│   ├── LedgerMissError      strict replay: the request is not in the ledger
│   ├── AwaitingInput        a human node has no answer yet: its item waits
│   └── LLMCallError         a model call failed; the subclass says how to react
│       ├── RateLimitedError     429: wait ``retry_after`` seconds, lower the rate, retry
│       ├── TransientLLMError    5xx, timeout, connection error: back off and retry
│       ├── PermanentLLMError    4xx other than 429: fail the node at once
│       └── MalformedResponseError  the server answered with something unreadable
└── ExecutionError           a run finished with failed nodes; lists each one
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.engine.llm import RateLimitInfo


class EngineError(Exception):
    """Root of every error the engine raises on purpose."""


class TraceError(EngineError):
    """forward() used a traced value in a way the graph cannot capture."""


@dataclass(frozen=True, slots=True)
class GraphIssue:
    """One problem in a graph: where it is (node and field) and what is wrong."""

    field: str
    message: str
    node: str | None = None

    def __str__(self) -> str:
        where = (
            f"node {self.node!r}, field {self.field!r}" if self.node else f"field {self.field!r}"
        )
        return f"{where}: {self.message}"


class GraphValidationError(EngineError):
    """A graph failed validation; ``issues`` lists every problem found."""

    def __init__(self, issues: Sequence[GraphIssue]) -> None:
        self.issues = list(issues)
        super().__init__("; ".join(str(issue) for issue in self.issues) or "invalid graph")


class ConfigError(EngineError):
    """Resource or execution configuration is unusable."""


class InputError(EngineError):
    """Inputs given to a run are missing, unknown or of the wrong type."""


class CheckpointError(EngineError):
    """A checkpoint does not belong to this graph or these inputs."""


class NodeError(EngineError):
    """A node failed. Raised by op handlers; the scheduler records it on the node."""


class AwaitingInput(NodeError):
    """A ``human`` node has no answer yet; the message is its rendered prompt. The item
    waits: its finished nodes are kept, and a run given the answer continues from them."""


class OutputLimitError(NodeError):
    """A node's output, or its item's outputs together, went over a size limit."""


class BranchError(NodeError):
    """No arm can be chosen: a condition that is not a boolean, or a value that matches no
    case where there is no default. Raised by eager ``branch``/``match_branch`` too."""


class LedgerMissError(NodeError):
    """Strict replay met a request the ledger does not hold; names the node and the field
    that differs from the nearest recorded request. Never retried."""

    def __init__(self, message: str, *, node: str, field: str | None = None) -> None:
        super().__init__(message)
        self.node = node
        self.field = field


class LLMCallError(NodeError):
    """A model call failed. ``transient`` says whether retrying may help."""

    transient = False

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class RateLimitedError(LLMCallError):
    """The endpoint answered 429. ``retry_after`` is seconds to wait, when the server said."""

    transient = True

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        status_code: int | None = 429,
        headers: Mapping[str, str] | None = None,
        rate_limit: RateLimitInfo | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code)
        self.retry_after = retry_after
        self.headers = dict(headers or {})
        self.rate_limit = rate_limit


class TransientLLMError(LLMCallError):
    """A failure worth retrying: 5xx, timeout, dropped connection."""

    transient = True


class PermanentLLMError(LLMCallError):
    """A failure retrying cannot fix: bad request, auth, unknown model."""


class MalformedResponseError(LLMCallError):
    """The endpoint's answer could not be read as a completion."""


def error_kind(exc: BaseException) -> str:
    """A stable, bounded name for an error: the engine class it derives from, if any.

    Provider layers raise subclasses (``ProviderPermanentError``); records and metrics use
    the engine's name for them (``PermanentLLMError``).
    """
    for cls in type(exc).__mro__:
        if cls.__module__ == __name__:
            return cls.__name__
    return type(exc).__name__


@dataclass(frozen=True, slots=True)
class NodeFailure:
    """A failed node and why, as reported by :class:`ExecutionError`."""

    node: str
    error: str
    error_type: str
    attempts: int


class ExecutionError(EngineError):
    """A run ended with failed nodes.

    ``failures`` names each failed node and its cause; ``outputs`` holds the outputs that
    did complete (independent branches still finish), and ``result`` the full run result.
    """

    def __init__(
        self, failures: Sequence[NodeFailure], outputs: Mapping[str, Any], result: Any = None
    ) -> None:
        self.failures = list(failures)
        self.outputs = dict(outputs)
        self.result = result
        lines = [f"{f.node}: {f.error_type}: {f.error}" for f in self.failures]
        super().__init__(f"{len(self.failures)} node(s) failed: " + "; ".join(lines))
