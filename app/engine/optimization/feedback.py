"""What a loss says about one forward pass, and the call that sends it backward.

>>> Feedback(0.0, "The final answer was '41'.", None, example=3).example
3
"""

from __future__ import annotations

from dataclasses import dataclass

from app.engine.errors import ConfigError
from app.engine.optimization.backward import BackwardResult, backward_pass
from app.engine.optimization.calls import Resources
from app.engine.records import ForwardRecord


@dataclass
class Feedback:
    """A loss's ``score`` in [0, 1] and ``text`` on ``record`` (the forward pass of training
    item ``example``)."""

    score: float
    text: str
    record: ForwardRecord | None
    example: int | str | None = None

    async def backward(
        self, *, critic: str = "critic", resources: Resources = None
    ) -> BackwardResult:
        """Send ``text`` backward through the recorded graph; the critic is endpoint ``critic``,
        called under ``resources`` (default: the resources the forward pass used). Feedback
        reaching a module's :class:`Parameter` is appended to its ``feedback`` too."""
        if self.record is None:
            raise ConfigError("this feedback has no forward record to go backward through")
        return await backward_pass(
            self.record, self.text, example=self.example, score=self.score, critic=critic,
            resources=resources,
        )  # fmt: skip
