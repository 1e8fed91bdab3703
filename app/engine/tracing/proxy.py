"""The stand-in for a value while ``forward()`` is traced.

A :class:`TracedValue` records what user code does with it. Formatting it (f-string,
``str()``, ``format()``, ``+``, ``%``) yields a *marker* string; when such a string reaches
a module or an output, the tracer turns it into a ``template`` node with the right edges.
Anything a graph cannot express (``if value:``, iteration, ``len``, string methods) raises
:class:`TraceError` with what to do instead, so no dependency is ever dropped silently.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

from app.engine.errors import TraceError
from app.engine.graph.refs import Ref
from app.engine.parameter import Parameter
from app.engine.tracing.context import REPR_MARK

if TYPE_CHECKING:
    from app.engine.tracing.tracer import Tracer

_BRANCH_HINT = (
    "a traced value has no truth value while forward() is traced; "
    "use branch(cond, if_true, if_false) or match_branch(value, {label: fn}, default=fn)"
)


class TracedValue:
    """A value that will exist when the graph runs; refers to an input, parameter or node."""

    __slots__ = ("_ref", "_tracer")

    def __init__(self, tracer: Tracer, ref: Ref) -> None:
        self._tracer = tracer
        self._ref = ref

    @property
    def ref(self) -> Ref:
        return self._ref

    def __str__(self) -> str:
        return self._tracer.marker(self._ref)

    def __repr__(self) -> str:
        # Not a reference: the tracer refuses this text if it reaches the graph (f"{x!r}",
        # "!a", a list formatted whole), while debuggers and logs can still show the value.
        return f"{REPR_MARK}{self._ref}\x01"

    def __format__(self, spec: str) -> str:
        if spec:
            raise TraceError(
                f"format spec {spec!r} on a traced value: the graph formats text as-is"
            )
        return str(self)

    def __add__(self, other: Any) -> str:
        return str(self) + _text_operand(other, "+")

    def __radd__(self, other: Any) -> str:
        return _text_operand(other, "+") + str(self)

    def __mod__(self, other: Any) -> NoReturn:
        raise TraceError(
            "'%' with a traced value on the left: write the template as a string literal"
        )

    def __mul__(self, other: Any) -> NoReturn:
        raise _arithmetic(self, "*")

    def __rmul__(self, other: Any) -> NoReturn:
        raise _arithmetic(self, "*")

    def __sub__(self, other: Any) -> NoReturn:
        raise _arithmetic(self, "-")

    __rsub__ = __sub__

    def __truediv__(self, other: Any) -> NoReturn:
        raise _arithmetic(self, "/")

    __rtruediv__ = __floordiv__ = __rfloordiv__ = __truediv__

    def __pow__(self, other: Any) -> NoReturn:
        raise _arithmetic(self, "**")

    def __neg__(self) -> NoReturn:
        raise _arithmetic(self, "-")

    def __getitem__(self, key: Any) -> TracedValue:
        if not isinstance(key, str | int) or isinstance(key, bool):
            what = f"the traced value {key.ref}" if isinstance(key, TracedValue) else repr(key)
            raise TraceError(f"index a traced value with a str key or int position, not {what}")
        return self._tracer.record_get(self, key)

    def __getattr__(self, name: str) -> NoReturn:
        if name.startswith("__"):
            raise AttributeError(name)
        raise TraceError(
            f"'.{name}' on traced value {self._ref}: values are opaque while tracing; "
            f"index fields with value[{name!r}], and do text changes inside a model call"
        )

    def __bool__(self) -> bool:
        raise TraceError(_BRANCH_HINT)

    def __iter__(self) -> NoReturn:
        raise TraceError(
            f"cannot iterate {self._ref} while tracing: its length is unknown; index it"
        )

    def __len__(self) -> int:
        raise TraceError(f"len() of {self._ref} is unknown while tracing")

    def __contains__(self, item: Any) -> bool:
        raise TraceError(f"'in' on {self._ref} while tracing: {_BRANCH_HINT}")

    def __eq__(self, other: object) -> bool:
        raise TraceError(f"comparing {self._ref} while tracing: {_BRANCH_HINT}")

    __ne__ = __eq__
    __lt__ = __le__ = __gt__ = __ge__ = __eq__

    def __hash__(self) -> int:
        return id(self)


def _text_operand(other: Any, op: str) -> str:
    if isinstance(other, str | TracedValue | Parameter):
        return str(other)
    raise TraceError(f"'{op}' between a traced value and {type(other).__name__}: only text joins")


def _arithmetic(value: TracedValue, op: str) -> TraceError:
    return TraceError(
        f"arithmetic ('{op}') on traced value {value.ref}: a graph has no arithmetic; "
        'to repeat text write f"{x}{x}", and compute numbers inside a model call'
    )
