"""The optimizer interface: parameters in, proposals out; the trainer's gate decides.

``await optimizer.step()`` turns the feedback gathered on each parameter into a
:class:`Proposal` without applying it; ``apply`` and ``revert`` put a proposal's text in
and take it out again. ``zero_feedback()`` clears what the last backward pass gathered.

>>> from app.engine import Parameter
>>> style = Parameter("Be brief.", description="tone")
>>> opt = Optimizer({"style": style})
>>> opt.apply(Proposal("style", "Be brief.", "Be terse.", 0.3, 2)); style.value
'Be terse.'
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from app.engine.errors import ConfigError
from app.engine.graph.model import Graph
from app.engine.parameter import Parameter

if TYPE_CHECKING:
    from app.engine.resources.config import ResourceConfig
    from app.engine.resources.manager import ResourceManager


@dataclass(frozen=True, slots=True)
class Proposal:
    """A new text for one parameter, not yet applied."""

    parameter: str
    old: str
    new: str
    edit_ratio: float
    feedback_count: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Rejection:
    """A parameter with feedback that got no proposal this step, and why (``unparsed``,
    ``unchanged``, ``edit_ratio``, ``error``)."""

    parameter: str
    reason: str
    detail: str = ""


@dataclass(slots=True)
class StepReport:
    """What the last ``step()`` did beside its proposals."""

    calls: int = 0
    rejections: list[Rejection] = field(default_factory=list)

    def errors(self) -> list[str]:
        return [r.detail for r in self.rejections if r.reason == "error"]


class Optimizer:
    """Base of optimizers over named :class:`Parameter` objects.

    ``params`` is a mapping ``{name: Parameter}`` (e.g. ``dict(module.named_parameters())``)
    or an iterable of parameters, which ``adopt_names`` names (the trainer gives them their
    graph names); until then they are ``parameter_0``, ``parameter_1``...
    """

    def __init__(self, params: Iterable[Parameter] | Mapping[str, Parameter]) -> None:
        pairs = params.items() if isinstance(params, Mapping) else _unnamed(params)
        self._params: list[tuple[str | None, Parameter]] = list(pairs)
        if not self._params:
            raise ConfigError("optimizer: no parameters to optimize")
        self.resources: ResourceConfig | ResourceManager | None = None
        self.report = StepReport()

    @property
    def parameters(self) -> list[Parameter]:
        return [param for _, param in self._params]

    def named(self) -> list[tuple[str, Parameter]]:
        """``(name, parameter)`` pairs, in the order given."""
        return [
            (f"parameter_{i}" if name is None else name, param)
            for i, (name, param) in enumerate(self._params)
        ]

    def adopt_names(self, names: Mapping[str, Parameter]) -> None:
        """Name the parameters given without a name after the key they have in ``names``."""
        by_id = {id(param): name for name, param in names.items()}
        self._params = [
            (name if name is not None else by_id.get(id(param)), param)
            for name, param in self._params
        ]

    def zero_feedback(self) -> None:
        """Forget the feedback gathered on every parameter."""
        for param in self.parameters:
            param.feedback.clear()

    def bind(self, resources: ResourceConfig | ResourceManager | None) -> Optimizer:
        """Use these resources for the optimizer's own model calls; returns ``self``."""
        self.resources = resources
        return self

    async def step(self) -> list[Proposal]:
        """Proposals from the gathered feedback (none applied). The base proposes nothing."""
        self.report = StepReport()
        return []

    def apply(self, proposal: Proposal) -> None:
        self._lookup(proposal.parameter).value = proposal.new

    def revert(self, proposal: Proposal) -> None:
        self._lookup(proposal.parameter).value = proposal.old

    def _lookup(self, name: str) -> Parameter:
        for known, param in self.named():
            if known == name:
                return param
        raise ConfigError(f"optimizer: no parameter named {name!r}")


def graph_parameters(graph: Graph) -> dict[str, Parameter]:
    """A :class:`Parameter` for each trainable parameter of a plain graph, by graph name,
    for an optimizer of the graph itself (``train(graph, ..., SFAOptimizer(...))``).

    >>> from app.engine import load_graph
    >>> g = load_graph({"name": "g", "inputs": {"q": {}}, "parameters": {"p": {"value": "Hi."}},
    ...     "nodes": [{"id": "a", "op": "llm", "alias": "m", "system": "{p}", "prompt": "{q}"}],
    ...     "outputs": {"y": "a"}})
    >>> graph_parameters(g)
    {'p': Parameter('Hi.')}
    """
    return {
        name: Parameter(spec.value, description=spec.description or f"the parameter {name}")
        for name, spec in graph.parameters.items()
        if spec.trainable
    }


def _unnamed(params: Iterable[Parameter]) -> list[tuple[str | None, Parameter]]:
    pairs: list[tuple[str | None, Parameter]] = []
    for param in params:
        if not isinstance(param, Parameter):
            raise ConfigError(f"optimizer: expected Parameter objects, got {type(param).__name__}")
        pairs.append((None, param))
    return pairs
