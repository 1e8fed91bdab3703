"""``SFAOptimizer``: rewrite each parameter from all the feedback gathered on it in a step.

One optimizer call (role ``optimizer``) per parameter with feedback, carrying every item
(each call site, each example). The reply is parsed by the prompt contract and asked again
when it does not parse. Conservatism is measurable: a proposal whose normalized edit ratio
passes the cap (default ``1 - 0.6 * conservatism``) is asked once more with the too-large
proposal shown as rejected, then dropped with reason ``edit_ratio``.

>>> from app.engine import Parameter
>>> opt = SFAOptimizer([Parameter("Count.", description="instruction")], conservatism=0.5)
>>> opt.max_edit_ratio
0.7
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping

from app.engine.errors import ConfigError, ExecutionError, LLMCallError
from app.engine.optimization.calls import ask_parsed
from app.engine.optimization.edits import edit_cap, edit_ratio
from app.engine.optimization.optimizer import Optimizer, Proposal, Rejection, StepReport
from app.engine.optimization.prompts import (
    OPTIMIZER_SYSTEM,
    optimizer_request,
    parse_improved_value,
    with_edit_cap_note,
)
from app.engine.optimization.roles import Role
from app.engine.parameter import Parameter

Outcome = Proposal | Rejection


class SFAOptimizer(Optimizer):
    """Textual-gradient descent, one rewrite per parameter per step.

    ``optimizer`` is the alias that rewrites, ``critic`` the alias the backward pass
    criticises through (``train()`` uses it), ``conservatism`` in [0, 1] bounds how much
    one step may change, and ``max_edit_ratio`` overrides the cap it implies.
    """

    def __init__(
        self,
        params: Iterable[Parameter] | Mapping[str, Parameter],
        *,
        optimizer: str = "optimizer",
        critic: str = "critic",
        conservatism: float = 0.5,
        max_edit_ratio: float | None = None,
        attempts: int = 3,
    ) -> None:
        super().__init__(params)
        if not 0.0 <= conservatism <= 1.0:
            raise ConfigError(f"conservatism must be in [0, 1], got {conservatism}")
        self.optimizer = optimizer
        self.critic = critic
        self.conservatism = conservatism
        self.max_edit_ratio = edit_cap(conservatism) if max_edit_ratio is None else max_edit_ratio
        self.attempts = attempts

    async def step(self) -> list[Proposal]:
        """One proposal per parameter with feedback whose rewrite parsed, changed the text
        and stayed under the edit cap; the rest are in ``self.report.rejections``."""
        self.report = StepReport()
        todo = [(n, p) for n, p in self.named() if p.feedback and p.requires_grad]
        if todo and self.resources is None:
            raise ConfigError("SFAOptimizer: call bind(resources) before step()")
        results = await asyncio.gather(
            *(self._propose(n, p) for n, p in todo), return_exceptions=True
        )
        for result in results:  # raised (a budget stop) only once every rewrite has ended
            if isinstance(result, BaseException):
                raise result
        outcomes = [r for r in results if not isinstance(r, BaseException)]
        self.report.rejections = [o for o in outcomes if isinstance(o, Rejection)]
        return [o for o in outcomes if isinstance(o, Proposal)]

    async def _propose(self, name: str, param: Parameter) -> Outcome:
        try:
            new = await self._rewrite(name, param, rejected=())
            if isinstance(new, Rejection) or self._fits(param.value, new):
                return self._outcome(name, param, new)
            again = await self._rewrite(
                name, param, rejected=(new,), ratio=edit_ratio(param.value, new)
            )
            return self._outcome(name, param, again)
        except (ExecutionError, LLMCallError) as error:
            return Rejection(name, "error", str(error))

    async def _rewrite(
        self, name: str, param: Parameter, rejected: tuple[str, ...], ratio: float | None = None
    ) -> str | Rejection:
        prompt = optimizer_request(
            name, param.description, param.value, param.feedback, self.conservatism, rejected
        )
        if ratio is not None:
            prompt = with_edit_cap_note(prompt, ratio, self.max_edit_ratio)
        new, reply = await ask_parsed(
            self.optimizer, OPTIMIZER_SYSTEM, prompt, parse_improved_value,
            role=Role.OPTIMIZER, resources=self.resources, attempts=self.attempts,
        )  # fmt: skip
        self.report.calls += reply.attempts
        if new is None:
            return Rejection(name, "unparsed", f"no IMPROVED_VALUE in {reply.attempts} replies")
        return new

    def _fits(self, old: str, new: str) -> bool:
        return edit_ratio(old, new) <= self.max_edit_ratio

    def _outcome(self, name: str, param: Parameter, new: str | Rejection) -> Outcome:
        if isinstance(new, Rejection):
            return new
        old = param.value
        if new == old:
            return Rejection(name, "unchanged", "the rewrite equals the current text")
        ratio = edit_ratio(old, new)
        if ratio > self.max_edit_ratio:
            detail = f"edit ratio {ratio:.3f} over the cap {self.max_edit_ratio:.3f}"
            return Rejection(name, "edit_ratio", detail)
        return Proposal(name, old, new, ratio, len(param.feedback))
