"""The request bodies of an optimization run and of an evaluation, as strict pydantic models.

Strict: unknown keys are refused, types are not coerced (``"5"`` is not a number, ``true`` is
not 1), and every string and list is bounded. These models check the shape of a request; what
it names (graph parameters, datasets, aliases, outputs) is checked by
:mod:`app.services.optimization.checks` against what exists.

>>> spec = OptimizationSpec.model_validate({"graph_id": "g", "train": "d1", "val": "d2",
...     "loss": {"verifiers": [{"op": "answer_equals"}]}, "budget": {"max_calls": 500}})
>>> spec.schedule.epochs, spec.metric is spec.loss
(3, True)
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from app.engine.graph.patterns import PatternError, compile_pattern
from app.engine.optimization.budget import Budget, Limits
from app.engine.optimization.roles import Role
from app.engine.optimization.verifiers import MAX_PATTERN_LENGTH, VERIFIER_PARAMS
from app.services.optimization.issues import FieldError
from app.services.optimization.split import MAX_SEED, Split

VERIFIER_OPS = frozenset(VERIFIER_PARAMS)
INT32_MAX = 2**31 - 1

Text = Annotated[str, Field(min_length=1, max_length=200)]
Alias = Annotated[str, Field(min_length=1, max_length=128)]
DatasetId = Annotated[str, Field(min_length=1, max_length=200)]
ParameterName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=128)]
Version = Annotated[int, Field(ge=1, le=INT32_MAX)]
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]
Weight = Annotated[float, Field(gt=0, le=1_000)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class VerifierSpec(_Strict):
    """One verifier term: ``{"op": "regex", "pattern": "^Answer: [0-9]+$", "output": "answer"}``.

    ``output`` names the graph output it checks (default: the only one); ``pattern`` is RE2,
    case-insensitive, bounded, and refused when RE2 cannot compile it within its limits."""

    op: str = Field(max_length=64)
    weight: Weight = 1.0
    output: Text | None = None  # the graph output key to check; default: the only output
    pattern: str | None = Field(default=None, max_length=MAX_PATTERN_LENGTH, validate_default=True)

    @field_validator("op")
    @classmethod
    def _known_op(cls, op: str) -> str:
        if op not in VERIFIER_OPS:
            raise ValueError(
                f"unknown verifier op {op!r}; known: {', '.join(sorted(VERIFIER_OPS))}"
            )
        return op

    @field_validator("pattern")
    @classmethod
    def _usable_pattern(cls, pattern: str | None, info: ValidationInfo) -> str | None:
        op = info.data.get("op")
        if op is None:  # the op itself is wrong: that error says enough
            return pattern
        takes = "pattern" in VERIFIER_PARAMS[op]
        if pattern is None and takes:
            raise ValueError(f"verifier op {op!r} needs a pattern")
        if pattern is not None and not takes:
            raise ValueError(f"verifier op {op!r} takes no pattern")
        if pattern is not None:
            try:
                compile_pattern(pattern)
            except PatternError as exc:
                raise ValueError(f"unusable pattern: {exc}") from None
        return pattern

    @property
    def params(self) -> dict[str, Any]:
        """The params of ``verifier(op, **params)`` in the engine's registry."""
        given = {"output": self.output, "pattern": self.pattern}
        return {name: value for name, value in given.items() if value is not None}


class JudgeSpec(_Strict):
    """An LLM judge term: the endpoint alias that grades and the rubric it grades by."""

    alias: Alias
    rubric: str = Field(min_length=1, max_length=10_000)
    weight: Weight = 1.0


class LossSpec(_Strict):
    """Weighted verifier terms and an optional judge term; at least one term."""

    verifiers: list[VerifierSpec] = Field(default_factory=list, max_length=16)
    judge: JudgeSpec | None = None

    @model_validator(mode="after")
    def _some_term(self) -> LossSpec:
        if not self.verifiers and self.judge is None:
            raise ValueError("a loss needs at least one verifier or a judge")
        return self

    @property
    def judge_terms(self) -> int:
        return 0 if self.judge is None else 1


class OptimizerSpec(_Strict):
    """The SFA optimizer: critic and optimizer aliases, conservatism, an edit-ratio cap."""

    critic: Alias = "critic"
    optimizer: Alias = "optimizer"
    conservatism: float = Field(default=0.5, ge=0, le=1)
    max_edit_ratio: float | None = Field(default=None, gt=0, le=1)


class Schedule(_Strict):
    epochs: int = Field(default=3, ge=1, le=1_000)
    batch_size: int = Field(default=5, ge=1, le=10_000)


class LimitsSpec(_Strict):
    """Caps of one scope; ``None`` is no cap, and every cap given is positive."""

    max_calls: int | None = Field(default=None, gt=0, le=10**9)
    max_tokens: int | None = Field(default=None, gt=0, le=10**12)
    max_cost: float | None = Field(default=None, gt=0, le=10**9)

    @property
    def is_empty(self) -> bool:
        return self.max_calls is None and self.max_tokens is None and self.max_cost is None

    def to_limits(self) -> Limits:
        return Limits(self.max_calls, self.max_tokens, self.max_cost)


class RoleLimitsSpec(LimitsSpec):
    @model_validator(mode="after")
    def _some_cap(self) -> RoleLimitsSpec:
        if self.is_empty:
            raise ValueError("give at least one of max_calls, max_tokens or max_cost")
        return self


class RolesSpec(_Strict):
    """Per-role caps, by role name (``task``, ``judge``, ``backward``, ``optimizer``,
    ``validation``)."""

    task: RoleLimitsSpec | None = None
    judge: RoleLimitsSpec | None = None
    backward: RoleLimitsSpec | None = None
    optimizer: RoleLimitsSpec | None = None
    validation: RoleLimitsSpec | None = None

    def given(self) -> dict[Role, RoleLimitsSpec]:
        found = {role: getattr(self, role.value) for role in Role}
        return {role: limits for role, limits in found.items() if limits is not None}


class BudgetSpec(LimitsSpec):
    """The run's hard caps, overall and per role; at least one cap somewhere."""

    max_wall_seconds: float | None = Field(default=None, gt=0, le=30 * 24 * 3600)
    roles: RolesSpec = Field(default_factory=RolesSpec)

    @model_validator(mode="after")
    def _some_cap(self) -> BudgetSpec:
        if self.is_empty and self.max_wall_seconds is None and not self.roles.given():
            raise ValueError(
                "a budget needs at least one cap: max_calls, max_tokens, max_cost, "
                "max_wall_seconds or one under roles"
            )
        return self

    def to_budget(self) -> Budget:
        """The engine's :class:`Budget` the run's meter checks."""
        roles = {role: limits.to_limits() for role, limits in self.roles.given().items()}
        overall = self.to_limits()
        return Budget(
            overall.max_calls, overall.max_tokens, overall.max_cost, self.max_wall_seconds, roles
        )


class OptimizationSpec(_Strict):
    """``POST /v1/optimizations``: what to train, on which data, scored how, within which budget.

    Data is ``train`` and ``val`` (and optionally ``test``) dataset ids, or one ``dataset``
    with a ``split``. ``parameters`` defaults to every trainable parameter of the graph and
    ``selection_metric`` (what the validation gate and the final test score by) to ``loss``.
    """

    graph_id: Text
    version: Version | None = None
    parameters: list[ParameterName] | None = Field(default=None, min_length=1, max_length=256)
    train: DatasetId | None = None
    val: DatasetId | None = None
    test: DatasetId | None = None
    dataset: DatasetId | None = None
    split: Split | None = None
    loss: LossSpec
    selection_metric: LossSpec | None = None
    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec)
    schedule: Schedule = Field(default_factory=Schedule)
    budget: BudgetSpec
    seed: Seed = 0
    min_delta: float = Field(default=0.0, ge=0, le=1)
    patience: int | None = Field(default=None, ge=1, le=10_000)
    target: float | None = Field(default=None, ge=0, le=1)
    dry_run: bool = False
    cache: Literal["off", "read", "read_write"] | None = Field(
        default=None, description="response ledger of the run's calls (docs/ledger.md)"
    )
    replay: Literal["strict"] | None = None

    @field_validator("parameters")
    @classmethod
    def _distinct(cls, names: list[str] | None) -> list[str] | None:
        if names is not None and len(set(names)) != len(names):
            raise ValueError("a parameter is named twice")
        return names

    @model_validator(mode="after")
    def _one_kind_of_data(self) -> OptimizationSpec:
        separate = [name for name in ("train", "val", "test") if getattr(self, name) is not None]
        if self.dataset is not None or self.split is not None:
            if separate:
                message = "give separate datasets or one 'dataset' with a 'split', not both"
                raise FieldError(separate[0], message)
            missing = "split" if self.split is None else "dataset"
            if getattr(self, missing) is None:
                raise FieldError(missing, "'dataset' and 'split' go together")
        else:
            for name in ("train", "val"):
                if getattr(self, name) is None:
                    message = "give 'train' and 'val' dataset ids, or one 'dataset' and a 'split'"
                    raise FieldError(name, message)
        return self

    @property
    def metric(self) -> LossSpec:
        """What validation and the final test score by."""
        return self.selection_metric or self.loss


class EvaluationSpec(_Strict):
    """``POST /v1/evaluations``: one graph version scored on a dataset, or two, paired."""

    graph_id: Text
    version: Version | None = None
    versions: list[Version] | None = Field(default=None, min_length=2, max_length=2)
    dataset: DatasetId
    loss: LossSpec
    seed: Seed = 0

    @field_validator("versions")
    @classmethod
    def _two_different(cls, versions: list[int] | None) -> list[int] | None:
        if versions is not None and versions[0] == versions[1]:
            raise ValueError("a paired evaluation compares two different versions")
        return versions

    @model_validator(mode="after")
    def _version_or_versions(self) -> EvaluationSpec:
        if self.version is not None and self.versions is not None:
            raise FieldError("versions", "give 'version' or 'versions', not both")
        return self

    @property
    def paired(self) -> bool:
        return self.versions is not None
