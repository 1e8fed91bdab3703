"""How ``module(...)`` reaches the executor while ``InferenceModule`` knows nothing of it.

The executor registers a :class:`Runtime` when it is imported (``import app.engine`` does
that), much as torch.fx leaves ``nn.Module`` ignorant of fx. Modules only ask for it.

>>> import app.engine
>>> callable(current_runtime().call)
True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.engine.errors import ConfigError

# (module, args, kwargs) -> result; the module is typed Any so this file, below
# app.engine.module, does not point back at it even for type checking.
CallModule = Callable[[Any, tuple[Any, ...], dict[str, Any]], Any]
BindSettings = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class Runtime:
    """What runs a module outside tracing (``call``) and builds its ``bind`` settings."""

    call: CallModule
    bind: BindSettings


_runtime: Runtime | None = None


def register_runtime(runtime: Runtime) -> None:
    """Install the executor; the last registration wins."""
    global _runtime
    _runtime = runtime


def current_runtime() -> Runtime:
    """The registered executor, or ``ConfigError`` if none was imported."""
    if _runtime is None:
        raise ConfigError("no executor is loaded: import app.engine before calling a module")
    return _runtime
