"""Record ``forward()`` into a :class:`Graph` (DESIGN §4).

Composite modules are flattened: their ``forward`` runs inline under a module-path scope,
and only leaf operations become nodes. Node ids come from module paths (``analyzer.llm``
becomes ``analyzer_llm``; a second call of the same module ``analyzer_llm_2``), so the
same pipeline always traces to the same ids.
"""

from __future__ import annotations

import inspect
import itertools
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from app.engine.errors import TraceError
from app.engine.graph.model import (
    ClassifyNode,
    CoalesceNode,
    GetNode,
    Graph,
    Guard,
    HumanNode,
    InputSpec,
    LLMNode,
    Node,
    ParameterSpec,
    ParseJsonNode,
    TemplateNode,
)
from app.engine.graph.refs import Ref, escape_literal, format_path, parse_template
from app.engine.module import InferenceModule, LLMInference
from app.engine.parameter import Parameter
from app.engine.tracing.context import REPR_MARK, reset_tracer, set_tracer
from app.engine.tracing.proxy import TracedValue

_MARKER = re.compile(r"\x00(\d+)\.(\d+):[^\x00\x01]*\x01")
_REPR = re.compile(re.escape(REPR_MARK) + r"([^\x00\x01]*)\x01")
_serials = itertools.count(1)
OutputKind = Literal["single", "dict", "tuple", "list"]


@dataclass(frozen=True, slots=True)
class Traced:
    """A traced module: the graph plus how to shape its outputs back into Python."""

    graph: Graph
    kind: OutputKind
    keys: tuple[str, ...]
    parameters: Mapping[str, Parameter]  # graph parameter name -> the module's Parameter
    modules: tuple[InferenceModule, ...] = ()  # every module the trace read

    def unpack(self, outputs: Mapping[str, Any]) -> Any:
        """Graph outputs (by name) in the shape ``forward()`` returned them."""
        if self.kind == "single":
            return outputs.get(self.keys[0])
        if self.kind == "dict":
            return {key: outputs.get(key) for key in self.keys}
        values = [outputs.get(key) for key in self.keys]
        return tuple(values) if self.kind == "tuple" else values


class Tracer:
    """Builds a graph while ``forward()`` runs on :class:`TracedValue` stand-ins."""

    def __init__(self, root: InferenceModule) -> None:
        self.root = root
        self.serial = next(_serials)
        self.inputs: dict[str, InputSpec] = {}
        self.parameters: dict[str, ParameterSpec] = {}
        self.nodes: list[Node] = []
        self._taken: set[str] = set()
        self._markers: list[Ref] = []
        self._module_paths = {id(m): path for path, m in root.named_modules()}
        self._read: dict[int, InferenceModule] = {id(m): m for m in root.modules()}
        self._param_paths = {id(p): path for path, p in root.named_parameters()}
        self._param_names: dict[int, str] = {}
        self._param_objects: dict[int, Parameter] = {}
        self._scopes: list[str] = [""]
        self._guards: list[Guard] = []
        self._arm_nodes: list[set[str]] = []
        self._dedupe: dict[tuple[Any, ...], str] = {}

    # -- entry point -------------------------------------------------------------------

    def trace(self, input_names: Sequence[str], input_types: Sequence[str], name: str) -> Traced:
        proxies = []
        for input_name, input_type in zip(input_names, input_types, strict=True):
            self._claim(input_name)
            self.inputs[input_name] = InputSpec.model_validate({"type": input_type})
            proxies.append(TracedValue(self, Ref(input_name)))
        token = set_tracer(self)
        try:
            result = self.call_module(self.root, tuple(proxies), {})
            kind, outputs = self._outputs(result)
        finally:
            reset_tracer(token)
        graph = Graph(
            name=name,
            inputs=self.inputs,
            parameters=self.parameters,
            nodes=self.nodes,
            outputs=outputs,
        )
        params = {name: self._param_objects[pid] for pid, name in self._param_names.items()}
        return Traced(graph, kind, tuple(outputs), params, tuple(self._read.values()))

    def _outputs(self, result: Any) -> tuple[OutputKind, dict[str, str]]:
        if result is None:
            raise TraceError("forward() returned None; return a value, a dict or a tuple of values")
        if isinstance(result, dict):
            return "dict", {str(key): str(self.as_ref(value)) for key, value in result.items()}
        if isinstance(result, tuple | list):
            kind: OutputKind = "tuple" if isinstance(result, tuple) else "list"
            return kind, {f"output_{i}": str(self.as_ref(value)) for i, value in enumerate(result)}
        return "single", {"output": str(self.as_ref(result))}

    # -- module calls ------------------------------------------------------------------

    def call_module(
        self, module: InferenceModule, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        path = self._module_path(module)
        self._read.setdefault(id(module), module)
        if isinstance(module, LLMInference):
            return self._record_llm(module, path, _single_argument(module, args, kwargs))
        self._scopes.append(path)
        try:
            return _no_coroutine(_forward(module, args, kwargs), module)
        finally:
            self._scopes.pop()

    def _module_path(self, module: InferenceModule) -> str:
        known = self._module_paths.get(id(module))
        if known is not None:
            return known
        scope = self._scopes[-1]
        return (
            f"{scope}.{type(module).__name__.lower()}" if scope else type(module).__name__.lower()
        )

    def _record_llm(self, module: LLMInference, path: str, prompt: Any) -> TracedValue:
        node_id = self._unique(path.replace(".", "_") or "llm")
        node = LLMNode(
            op="llm",
            id=node_id,
            alias=module.alias,
            system=self.template_text(module.system_prompt),
            prompt=self.template_text(prompt),
            temperature=module.temperature,
            max_tokens=module.max_tokens,
            stop=module.stop,
            seed=module.seed,
            response_format=module.response_format,
            timeout_s=module.timeout_s,
            max_retries=module.max_retries,
            when=self._guard(),
            module=path or None,
        )
        return self._add(node)

    # -- values ------------------------------------------------------------------------

    def marker(self, ref: Ref) -> str:
        self._markers.append(ref)
        return f"\x00{self.serial}.{len(self._markers) - 1}:{ref}\x01"

    def parameter_marker(self, param: Parameter) -> str:
        return self.marker(Ref(self._parameter_name(param)))

    def _parameter_name(self, param: Parameter) -> str:
        if id(param) not in self._param_names:
            path = self._param_paths.get(id(param))
            name = self._unique((path or "param").replace(".", "_"))
            self._param_names[id(param)] = name
            self._param_objects[id(param)] = param
            self.parameters[name] = ParameterSpec(
                value=param.value,
                description=param.description,
                trainable=param.requires_grad,
                path=path,
            )
        return self._param_names[id(param)]

    def template_text(self, value: Any) -> str:
        """Template text for a text field: literals inline, anything traced by reference."""
        if isinstance(value, str) and not _has_marker(value):
            return escape_literal(value)
        return "{" + str(self.as_ref(value)) + "}"

    def as_ref(self, value: Any) -> Ref:
        """A reference to ``value``, adding a template node when text must be assembled."""
        if isinstance(value, TracedValue):
            self._check_own(value)
            return value.ref
        if isinstance(value, Parameter):
            return Ref(self._parameter_name(value))
        if isinstance(value, str):
            text = self._to_template(value)
            single = _single_ref_text(text)
            return single if single else self._record_template(text)
        raise TraceError(
            f"{type(value).__name__} value where the graph needs text or a traced value; "
            "convert constants to str"
        )

    def _check_own(self, value: TracedValue) -> None:
        if value._tracer is not self:
            raise TraceError(f"traced value {value.ref} belongs to a different trace")

    def _to_template(self, text: str) -> str:
        pieces, pos = [], 0
        for match in _MARKER.finditer(text):
            pieces.append(escape_literal(text[pos : match.start()]))
            pieces.append("{" + str(self._marker_ref(match)) + "}")
            pos = match.end()
        pieces.append(escape_literal(text[pos:]))
        template = "".join(pieces)
        _refuse_repr(template)
        if "\x00" in template or "\x01" in template:
            raise TraceError(
                "text built from a traced value was changed by a string method (upper, strip, "
                "slicing...); the graph cannot capture that: do it inside a model call"
            )
        return template

    def _marker_ref(self, match: re.Match[str]) -> Ref:
        serial, index = int(match.group(1)), int(match.group(2))
        if serial != self.serial or index >= len(self._markers):
            raise TraceError("text contains a traced value from a different trace")
        return self._markers[index]

    # -- recording ops -----------------------------------------------------------------

    def _record_template(self, text: str) -> Ref:
        key = ("template", text, self._guard_key())
        if key not in self._dedupe:
            node_id = self._unique(self._scoped("template"))
            self._add(TemplateNode(op="template", id=node_id, text=text, **self._common()))
            self._dedupe[key] = node_id
        return Ref(self._dedupe[key])

    def record_get(self, source: TracedValue, key: str | int) -> TracedValue:
        self._check_own(source)
        path = format_path((key,)).removeprefix(".")
        dedupe = ("get", str(source.ref), path, self._guard_key())
        if dedupe in self._dedupe:
            return TracedValue(self, Ref(self._dedupe[dedupe]))
        node_id = self._unique(self._scoped("get"))
        self._dedupe[dedupe] = node_id
        return self._add(
            GetNode(op="get", id=node_id, source=str(source.ref), path=path, **self._common())
        )

    def record_parse_json(self, source: Any) -> TracedValue:
        ref = self.as_ref(source)
        node_id = self._unique(self._scoped("parse_json"))
        return self._add(
            ParseJsonNode(op="parse_json", id=node_id, source=str(ref), **self._common())
        )

    def record_classify(self, source: Any, labels: Mapping[str, str], default: str) -> TracedValue:
        ref = self.as_ref(source)
        node_id = self._unique(self._scoped("classify"))
        node = ClassifyNode(
            op="classify",
            id=node_id,
            source=str(ref),
            labels=dict(labels),
            default=default,
            **self._common(),
        )
        return self._add(node)

    def record_human(
        self, prompt: Any, schema: dict[str, Any] | bool, **options: Any
    ) -> TracedValue:
        node_id = self._unique(self._scoped("human"))
        text = self.template_text(prompt)
        spec = {"op": "human", "id": node_id, "prompt": text, "schema": schema, **options}
        return self._add(HumanNode.model_validate({**spec, **self._common()}))

    def record_coalesce(self, refs: Sequence[Ref]) -> TracedValue:
        node_id = self._unique(self._scoped("coalesce"))
        node = CoalesceNode(
            op="coalesce", id=node_id, sources=[str(r) for r in refs], **self._common()
        )
        return self._add(node)

    def _add(self, node: Node) -> TracedValue:
        self.nodes.append(node)
        for arm in self._arm_nodes:
            arm.add(node.id)
        return TracedValue(self, Ref(node.id))

    def _common(self) -> dict[str, Any]:
        scope = self._scopes[-1]
        return {"when": self._guard(), "module": scope or None}

    # -- branches ----------------------------------------------------------------------

    def run_arm(self, guard_ref: Ref, condition: dict[str, Any], body: Any) -> Ref:
        """Trace one branch arm under a guard; return a reference to its result."""
        with self._guarded(guard_ref, condition) as created:
            result = body() if callable(body) else body
            ref = self.as_ref(result)
            if ref.name not in created or ref.path:
                ref = self.record_coalesce([ref]).ref  # gate a value made outside the arm
        return ref

    @contextmanager
    def _guarded(self, ref: Ref, condition: dict[str, Any]) -> Iterator[set[str]]:
        if self._guards:  # nested: the condition itself must be skipped when the outer arm is
            ref = self._gated(ref)
        self._guards.append(Guard.model_validate({"ref": str(ref), **condition}))
        self._arm_nodes.append(set())
        try:
            yield self._arm_nodes[-1]
        finally:
            self._guards.pop()
            self._arm_nodes.pop()

    def _gated(self, ref: Ref) -> Ref:
        key = ("gate", str(ref), self._guard_key())
        if key not in self._dedupe:
            self._dedupe[key] = self.record_coalesce([ref]).ref.name
        return Ref(self._dedupe[key])

    def _guard(self) -> Guard | None:
        return self._guards[-1] if self._guards else None

    def _guard_key(self) -> str:
        guard = self._guard()
        return guard.model_dump_json() if guard else ""

    # -- names -------------------------------------------------------------------------

    def _scoped(self, base: str) -> str:
        scope = self._scopes[-1].replace(".", "_")
        return f"{scope}_{base}" if scope else base

    def _unique(self, base: str) -> str:
        name = (
            base
            if base not in self._taken
            else next(f"{base}_{n}" for n in itertools.count(2) if f"{base}_{n}" not in self._taken)
        )
        self._claim(name)
        return name

    def _claim(self, name: str) -> None:
        if name in self._taken:
            raise TraceError(f"name {name!r} is used twice in the graph")
        self._taken.add(name)


def _has_marker(text: str) -> bool:
    return "\x00" in text or "\x01" in text


def _single_ref_text(template: str) -> Ref | None:
    return parse_template(template).single_ref


def _single_argument(module: LLMInference, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    values = [*args, *kwargs.values()]
    if len(values) != 1:
        raise TraceError(f"{module!r} takes exactly one prompt argument, got {len(values)}")
    return values[0]


def _no_coroutine(result: Any, module: InferenceModule) -> Any:
    if inspect.iscoroutine(result):
        result.close()
        raise TraceError(
            f"{type(module).__name__}.forward is async; write it as a plain def: "
            "the engine runs the traced graph concurrently for you"
        )
    return result


def _forward(module: InferenceModule, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``module.forward`` with a ``TypeError`` about a traced value turned into advice."""
    try:
        return module.forward(*args, **kwargs)
    except TypeError as error:
        if "TracedValue" not in str(error) and "Parameter found" not in str(error):
            raise
        raise TraceError(_type_advice(str(error), type(module).__name__)) from error


def _type_advice(message: str, where: str) -> str:
    if "sequence item" in message:  # str.join refuses anything but str
        return (
            f"str.join() of traced values or parameters in {where}.forward: join their "
            'text instead, as in "\\n".join(f"{v}" for v in values) (this becomes one template)'
        )
    return (
        f"{message} (in {where}.forward): a traced value is text the graph fills in at run "
        'time; use it in an f-string (f"{v}") or with str(v)'
    )


def _refuse_repr(template: str) -> None:
    match = _REPR.search(template)
    if match:
        raise TraceError(
            f'repr() of traced value {match.group(1)} (f"{{x!r}}", "!a", repr(), or a list '
            "or dict formatted whole) cannot be traced: the graph inserts text as-is; "
            'write {value} as in f"{x}", or format each item: ", ".join(f"{v}" for v in items)'
        )
