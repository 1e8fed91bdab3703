"""The graph IR: plain, serializable data (DESIGN §3).

>>> g = Graph.model_validate({"name": "echo", "inputs": {"text": {}},
...     "nodes": [{"id": "shout", "op": "template", "text": "{text}!"}],
...     "outputs": {"out": "shout"}})
>>> g.node("shout").op
'template'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    TypeAdapter,
    ValidationError,
    model_serializer,
    model_validator,
)

from app.engine.errors import BranchError, GraphIssue, GraphValidationError
from app.engine.graph.messages import Message, ToolChoice, ToolDef
from app.engine.graph.refs import shown

Name = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=128)]
Scalar = str | int | float | bool | None
InputType = Literal["string", "number", "integer", "boolean", "object", "array", "any"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Guard(_Strict):
    """``when`` on a node: run it only if the referenced value passes the condition.

    Exactly one of ``in`` (value is one of a list), ``not_in`` (value is none of a list)
    or ``equals`` (value equals one scalar) is given. ``equals: true`` or ``equals: false``
    is a condition: the value must be a JSON boolean.
    """

    ref: str = Field(min_length=1, max_length=512)
    in_: list[Scalar] | None = Field(default=None, alias="in", max_length=1000)
    not_in: list[Scalar] | None = Field(default=None, max_length=1000)
    equals: Scalar = None

    @model_validator(mode="after")
    def _one_condition(self) -> Guard:
        given = {"in_", "not_in", "equals"} & self.model_fields_set
        if len(given) != 1:
            raise ValueError("a guard needs exactly one of 'in', 'not_in' or 'equals'")
        if given != {"equals"} and getattr(self, given.pop()) is None:
            raise ValueError("'in' and 'not_in' need a list")
        return self

    @property
    def is_condition(self) -> bool:
        """``equals: true`` or ``equals: false``: the guard of a ``branch`` arm."""
        return isinstance(self.equals, bool) and "equals" in self.model_fields_set

    def admits(self, value: Any) -> bool:
        """Whether a node guarded by this runs when the reference has ``value``.

        A condition on anything but a boolean raises ``BranchError``: neither arm could run.
        """
        if self.is_condition and not isinstance(value, bool):
            raise BranchError(
                f"condition {self.ref!r} must be a JSON boolean (true or false), got {shown(value)}"
            )
        if "equals" in self.model_fields_set:
            return _same(value, self.equals)
        if "in_" in self.model_fields_set:
            return any(_same(value, allowed) for allowed in self.in_ or ())
        return not any(_same(value, banned) for banned in self.not_in or ())

    @model_serializer
    def _dump(self) -> dict[str, Any]:
        if "in_" in self.model_fields_set:
            return {"ref": self.ref, "in": self.in_}
        if "not_in" in self.model_fields_set:
            return {"ref": self.ref, "not_in": self.not_in}
        return {"ref": self.ref, "equals": self.equals}


def _same(value: Any, expected: Scalar) -> bool:
    # NOTE: Python says True == 1; JSON does not, so a boolean only matches a boolean.
    if isinstance(value, bool) or isinstance(expected, bool):
        return value is expected
    return bool(value == expected)


class NodeBase(_Strict):
    id: Name
    when: Guard | None = None
    module: str | None = Field(default=None, max_length=512)
    priority: int | None = None


class LLMNode(NodeBase):
    """A model call: ``system``, then ``messages``, then ``prompt`` (one of the last two needed)."""

    op: Literal["llm"]
    alias: str = Field(min_length=1, max_length=128)
    system: str = ""
    prompt: str | None = None
    messages: list[Message] | None = Field(default=None, min_length=1, max_length=1000)
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, gt=0, le=1_000_000)
    stop: list[str] | None = Field(default=None, max_length=16)
    seed: int | None = None
    response_format: Literal["text", "json"] | dict[str, Any] = "text"
    tools: list[ToolDef] | None = Field(default=None, min_length=1, max_length=128)
    tool_choice: ToolChoice | None = None
    top_p: float | None = Field(default=None, ge=0, le=1)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    logprobs: StrictBool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    n: int | None = Field(default=None, ge=1, le=128)
    reasoning_effort: Literal["minimal", "low", "medium", "high"] | None = None
    timeout_s: float | None = Field(default=None, gt=0)
    max_retries: int | None = Field(default=None, ge=0, le=100)


class TemplateNode(NodeBase):
    op: Literal["template"]
    text: str


class HumanNode(NodeBase):
    """A human's answer: the item waits until one arrives (or ``timeout_s`` passes).

    ``prompt`` is a template, rendered like the other ops'; the answer must match ``schema``
    (a safe subset of JSON Schema, :mod:`app.engine.graph.answer_schema`). On a timeout the
    node outputs ``default`` (``on_timeout: default``) or fails (``on_timeout: fail``).
    """

    op: Literal["human"]
    prompt: str = Field(max_length=100_000)
    schema_: dict[str, Any] | bool = Field(default=True, alias="schema")
    timeout_s: float | None = Field(default=None, gt=0, le=365 * 86_400)
    on_timeout: Literal["default", "fail"] = "fail"
    default: Any = None


class ParseJsonNode(NodeBase):
    op: Literal["parse_json"]
    source: str = Field(min_length=1, max_length=512)


class GetNode(NodeBase):
    op: Literal["get"]
    source: str = Field(min_length=1, max_length=512)
    path: str = Field(min_length=1, max_length=512)


class ClassifyNode(NodeBase):
    op: Literal["classify"]
    source: str = Field(min_length=1, max_length=512)
    labels: dict[str, str] = Field(min_length=1, max_length=64)
    default: str


class CoalesceNode(NodeBase):
    op: Literal["coalesce"]
    sources: list[str] = Field(min_length=1)


class ToolNode(NodeBase):
    op: Literal["tool"]
    name: str = Field(min_length=1, max_length=128)
    args: dict[str, str] = Field(default_factory=dict)


Node = Annotated[
    LLMNode
    | TemplateNode
    | ParseJsonNode
    | GetNode
    | ClassifyNode
    | CoalesceNode
    | ToolNode
    | HumanNode,
    Field(discriminator="op"),
]


class InputSpec(_Strict):
    type: InputType = "string"
    description: str | None = None


class ParameterSpec(_Strict):
    value: str
    description: str = ""
    trainable: bool = True
    path: str | None = Field(default=None, description="dotted module path of the Parameter")


class Graph(_Strict):
    """A pipeline: named inputs and parameters, nodes, and named outputs."""

    name: str = Field(min_length=1, max_length=200)
    description: str | None = None
    inputs: dict[Name, InputSpec] = Field(default_factory=dict)
    parameters: dict[Name, ParameterSpec] = Field(default_factory=dict)
    nodes: list[Node] = Field(default_factory=list)
    outputs: dict[str, str] = Field(min_length=1)

    def node(self, node_id: str) -> Node:
        """The node with this id (``KeyError`` if there is none), in constant time."""
        nodes = self.nodes
        position = self._positions().get(node_id)
        if position is None or position >= len(nodes) or nodes[position].id != node_id:
            position = self._positions(rebuild=True).get(node_id)  # the list was changed
        if position is None:
            raise KeyError(node_id)
        return nodes[position]

    def _positions(self, rebuild: bool = False) -> dict[str, int]:
        # NOTE: kept in __dict__ beside the fields (as functools.cached_property would be), not
        # as a private attribute: pydantic compares private attributes in ==, and a lookup must
        # not make two equal graphs unequal. Checked on every hit, rebuilt on a miss, so a copy
        # with other nodes (model_copy) or a list changed in place never answers wrong.
        positions = self.__dict__.get("_node_positions")
        if positions is None or rebuild:
            positions = {}
            for position, node in enumerate(self.nodes):
                positions.setdefault(node.id, position)  # the first of duplicate ids, as a scan
            self.__dict__["_node_positions"] = positions
        return positions

    @property
    def node_ids(self) -> list[str]:
        return [node.id for node in self.nodes]

    def with_parameters(self, values: dict[str, str]) -> Graph:
        """A copy with some parameter values replaced (unknown names raise ``KeyError``)."""
        params = dict(self.parameters)
        for name, value in values.items():
            params[name] = params[name].model_copy(update={"value": value})
        return self.model_copy(update={"parameters": params})


_INPUTS: TypeAdapter[dict[str, InputSpec]] = TypeAdapter(dict[Name, InputSpec])


def graph_inputs(graph: Graph | Mapping[str, Any]) -> dict[str, InputSpec]:
    """The inputs a graph declares, from a :class:`Graph` or its JSON data, without
    validating its nodes or compiling a plan (what a job submission checks items against).

    >>> graph_inputs({"name": "g", "inputs": {"doc": {}}, "nodes": [], "outputs": {"y": "doc"}})
    {'doc': InputSpec(type='string', description=None)}
    """
    if isinstance(graph, Graph):
        return dict(graph.inputs)
    try:
        return _INPUTS.validate_python(graph.get("inputs") or {})
    except ValidationError as exc:
        issues = [GraphIssue("inputs", error["msg"]) for error in exc.errors()]
        raise GraphValidationError(issues) from None
