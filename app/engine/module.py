"""PyTorch-style modules: ``InferenceModule`` composes, ``LLMInference`` calls a model."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal

from app.engine.dispatch import current_runtime
from app.engine.edits import stamp_edit
from app.engine.errors import ConfigError, TraceError
from app.engine.parameter import Parameter
from app.engine.tracing.context import current_tracer

if TYPE_CHECKING:
    from app.engine.resources.config import ResourceConfig
    from app.engine.resources.manager import ResourceManager


class InferenceModule:
    """Base class of every pipeline piece.

    Assigning a module or :class:`Parameter` to an attribute registers it. ``forward`` is
    written with plain Python; calling the module traces it into a graph and runs that.

    >>> class Summarize(InferenceModule):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.llm = LLMInference("fast", system_prompt="Summarize.")
    ...     def forward(self, text):
    ...         return self.llm(f"Text:\\n{text}")
    >>> [name for name, _ in Summarize().named_modules()]
    ['', 'llm']
    """

    _modules: dict[str, InferenceModule]
    _parameters: dict[str, Parameter]
    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_binding", None)
        object.__setattr__(self, "_traced", None)

    def __setattr__(self, name: str, value: Any) -> None:
        if "_modules" not in self.__dict__:
            raise ConfigError(f"{type(self).__name__}.__init__ must call super().__init__() first")
        self._modules.pop(name, None)
        self._parameters.pop(name, None)
        if isinstance(value, InferenceModule):
            self._modules[name] = value
        elif isinstance(value, Parameter):
            self._parameters[name] = value
        object.__setattr__(self, name, value)
        stamp_edit(self)

    def __delattr__(self, name: str) -> None:
        self._modules.pop(name, None)
        self._parameters.pop(name, None)
        object.__delattr__(self, name)
        stamp_edit(self)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Describe the pipeline; called once, with traced values, to build the graph."""
        raise TraceError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        tracer = current_tracer()
        if tracer is not None:
            return tracer.call_module(self, args, kwargs)
        return current_runtime().call(self, args, kwargs)

    # -- introspection ---------------------------------------------------------------

    def named_children(self) -> Iterator[tuple[str, InferenceModule]]:
        yield from self._modules.items()

    def children(self) -> Iterator[InferenceModule]:
        for _, module in self.named_children():
            yield module

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, InferenceModule]]:
        """This module and every descendant once, with dotted paths (``""`` for self)."""
        yield from self._walk(prefix, set())

    def _walk(self, path: str, seen: set[int]) -> Iterator[tuple[str, InferenceModule]]:
        if id(self) in seen:
            return
        seen.add(id(self))
        yield path, self
        for name, child in self._modules.items():
            yield from child._walk(_join(path, name), seen)

    def modules(self) -> Iterator[InferenceModule]:
        for _, module in self.named_modules():
            yield module

    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        """Every parameter once (shared ones under their first path)."""
        seen: set[int] = set()
        for path, module in self.named_modules():
            for name, param in module._parameters.items():
                if id(param) not in seen:
                    seen.add(id(param))
                    yield _join(path, name), param

    def parameters(self) -> Iterator[Parameter]:
        for _, param in self.named_parameters():
            yield param

    # -- state -----------------------------------------------------------------------

    def state_dict(self) -> dict[str, str]:
        """``{dotted name: value}`` for every parameter."""
        return {name: param.value for name, param in self.named_parameters()}

    def load_state_dict(self, state: Mapping[str, Any], *, strict: bool = True) -> None:
        """Set parameter values; unknown keys or non-text values raise ``ConfigError``.

        With ``strict`` (the default) every parameter must be present too.
        """
        params = dict(self.named_parameters())
        problems = [f"unknown parameter {key!r}" for key in state if key not in params]
        problems += [
            f"{key!r} must be str, got {type(value).__name__}"
            for key, value in state.items()
            if key in params and not isinstance(value, str)
        ]
        if strict:
            problems += [f"missing parameter {key!r}" for key in params if key not in state]
        if problems:
            raise ConfigError("load_state_dict: " + "; ".join(problems))
        for key, value in state.items():
            params[key].value = value

    def train(self, mode: bool = True) -> InferenceModule:
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> InferenceModule:
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> InferenceModule:
        for param in self.parameters():
            param.requires_grad = requires_grad
        return self

    def bind(
        self, resources: ResourceConfig | ResourceManager | None = None, **settings: Any
    ) -> InferenceModule:
        """Attach resources (and execution settings) so that ``await module(x)`` runs.

        ``settings`` takes the fields of :class:`ExecutionSettings` (``max_retries``,
        ``timeout_s``, ``checkpoint``...). Returns ``self``.
        """
        binding = current_runtime().bind(resources=resources, **settings)
        object.__setattr__(self, "_binding", binding)
        return self

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [
            f"  ({name}): {child!r}".replace("\n", "\n  ") for name, child in self.named_children()
        ]
        head = f"{type(self).__name__}({self.extra_repr()}"
        return head + ("\n" + "\n".join(lines) + "\n)" if lines else ")")


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


ResponseFormat = Literal["text", "json"] | dict[str, Any]


class LLMInference(InferenceModule):
    """One model call: the only module that talks to an endpoint.

    Args:
        alias: endpoint alias from the :class:`ResourceConfig`.
        system_prompt: fixed text, or a :class:`Parameter` the optimizer may rewrite.
        temperature, max_tokens, stop, seed: passed to the model.
        response_format: ``"text"``, ``"json"`` (output parsed as JSON) or a JSON schema.

    >>> llm = LLMInference("fast", system_prompt="Answer in one word.", max_tokens=5)
    >>> llm.alias
    'fast'
    """

    def __init__(
        self,
        alias: str,
        system_prompt: str | Parameter = "",
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        response_format: ResponseFormat = "text",
        stop: list[str] | None = None,
        seed: int | None = None,
        timeout_s: float | None = None,
        max_retries: int | None = None,
    ) -> None:
        super().__init__()
        self.alias = alias
        self.system_prompt = system_prompt
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.response_format = response_format
        self.stop = stop
        self.seed = seed
        self.timeout_s = timeout_s
        self.max_retries = max_retries

    def forward(self, prompt: Any) -> Any:
        raise TraceError("LLMInference is a leaf: call the module, not forward()")

    def extra_repr(self) -> str:
        return f"alias={self.alias!r}"
