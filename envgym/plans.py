"""Plans: what a teacher hands the environment each step, and the one place where every plan is validated.

Five kinds ship: ``counts`` (how many examples of each skill the data engine should make; a numeric array of budget
shares, the action space RL libraries drive, becomes one), ``examples`` (explicit question/answer pairs, verified
before use), ``reweight`` (STAT-Sel: draw from the environment's training pool by skill or per-example weight),
``synthesize`` (STAT-Syn: new examples of a skill written by the data engine in the style of pool examples) and
``preferences`` (DPO preference pairs, SPaR's, optionally with SFT examples in the same step). New kinds register a
handler with :meth:`envgym.SkillListEnv.register_plan_kind` without touching the core; a plan object with a
``validated(skills)`` method has it called before its size is charged.

A teacher is untrusted: :func:`validate_plan` turns whatever it returned into a clean plan object (whole,
non-negative counts for known skills; examples with string fields and known skills; a whole, non-negative
``size`` for other kinds) or raises :class:`~envgym.error.InvalidPlan` saying what was expected and what was
given. Nothing a teacher builds by hand (``CountPlan({"x": -5})``) gets past it.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from agents.base import allocate
from skills.errors import BudgetExceeded, InvalidPlan, did_you_mean
from skills.task import Example, PreferencePair


@dataclass(frozen=True)
class CountPlan:
    """Generate ``counts[skill]`` fresh training examples of each skill."""

    counts: dict[str, int]
    kind: ClassVar[str] = "counts"

    @property
    def size(self) -> int:
        return sum(self.counts.values())

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "counts": dict(self.counts)}


@dataclass(frozen=True)
class ExamplesPlan:
    """Train on these explicit examples (``Example`` objects or ``{"question", "answer", "skill"}`` dicts);
    each is checked by the task's verifier and the held-out filter before use."""

    examples: list[Example] = field(default_factory=list)
    kind: ClassVar[str] = "examples"

    @property
    def size(self) -> int:
        return len(self.examples)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "examples": [ex.to_dict() for ex in self.examples]}


@dataclass(frozen=True)
class ReweightPlan:
    """STAT-Sel: ``size`` training examples drawn from the environment's pool by weight.

    Exactly one of ``skill_weights`` (skill -> weight: the plan's examples are split over the skills in proportion,
    largest remainder, and drawn from each skill's pool examples) and ``example_weights`` (pool index -> weight:
    drawn without replacement with probability proportional to the weight; needs a fixed pool, ``pool_size`` or
    ``pool_file``). Without a fixed pool the pool is the task's generator, and skill weights are a count plan.
    """

    size: int
    skill_weights: dict[str, float] | None = None
    example_weights: dict[int, float] | None = None
    kind: ClassVar[str] = "reweight"

    def validated(self, skills: Sequence[str]) -> ReweightPlan:
        size = whole_count(self.size, "the size of a 'reweight' plan")
        if (self.skill_weights is None) == (self.example_weights is None):
            raise InvalidPlan(
                "Expects a reweight plan with exactly one of skill_weights ({skill: weight}) and example_weights "
                f"({{pool index: weight}}); actual skill_weights={_describe(self.skill_weights)}, "
                f"example_weights={_describe(self.example_weights)}."
            )
        if self.skill_weights is not None:
            _check_mapping(self.skill_weights, "skill_weights")
            for name in self.skill_weights:
                _check_skill(name, skills, "Plan's skill_weights name")
            weights = {skill: _weight(self.skill_weights.get(skill, 0.0), f"skill {skill!r}") for skill in skills}
            return ReweightPlan(size, skill_weights=weights)
        _check_mapping(self.example_weights, "example_weights")
        checked = {}
        for index, value in self.example_weights.items():  # type: ignore[union-attr]
            checked[whole_count(index, "a pool index of example_weights")] = _weight(value, f"pool example {index}")
        return ReweightPlan(size, example_weights=checked)

    def to_json(self) -> dict[str, Any]:
        weights = {"skill_weights": self.skill_weights} if self.skill_weights is not None else {}
        if self.example_weights is not None:
            weights = {"example_weights": {str(i): w for i, w in self.example_weights.items()}}
        return {"kind": self.kind, "size": self.size, **weights}


@dataclass(frozen=True)
class SynthesisPlan:
    """STAT-Syn: for each ``(skill, n)`` request, ``n`` new examples of ``skill`` written by the environment's data
    engine in the style of reference examples of that skill from its pool (the procedural engine writes neighbours
    of the references and the task's verifier decides; an LLM engine writes new questions, solves each several times
    and keeps those whose solutions agree). The budget is charged ``size``, the sum of the ``n``."""

    requests: tuple[tuple[str, int], ...]
    kind: ClassVar[str] = "synthesize"

    @property
    def size(self) -> int:
        return sum(n for _, n in self.requests)

    def validated(self, skills: Sequence[str]) -> SynthesisPlan:
        if isinstance(self.requests, (str, bytes, Mapping)) or not isinstance(self.requests, Sequence):
            raise InvalidPlan(
                f"Expects SynthesisPlan.requests to be (skill, n) pairs; actual {_describe(self.requests)}."
            )
        checked = []
        for index, request in enumerate(self.requests):
            if not isinstance(request, (tuple, list)) or len(request) != 2:
                raise InvalidPlan(
                    f"Expects synthesis request {index} to be a (skill, n) pair; actual {_describe(request)}."
                )
            skill, n = request
            _check_skill(skill, skills, f"Synthesis request {index} names")
            checked.append((skill, whole_count(n, f"synthesis request {index}")))
        return SynthesisPlan(tuple(checked))

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "requests": [list(request) for request in self.requests]}


@dataclass(frozen=True)
class PreferencePlan:
    """Preference-train the student on ``pairs`` (DPO; :class:`~skills.task.PreferencePair` objects or
    ``{"question", "chosen", "rejected", "skill"}`` dicts), after SFT on the optional ``examples`` in the same step.

    Budget unit: one pair costs one example, like one SFT example, so a teacher can mix both in an episode at one
    price. A pair is trained on only when its ``chosen`` answer passes the task's verifier (as an example of
    ``skill``), differs from ``rejected``, fits the student, and its question is not held out; the environment
    refuses the plan kind, with a message, for a student without ``train_preferences``."""

    pairs: Sequence[PreferencePair] = ()
    examples: Sequence[Example] = ()
    kind: ClassVar[str] = "preferences"

    @property
    def size(self) -> int:
        return len(self.pairs) + len(self.examples)

    def validated(self, skills: Sequence[str]) -> PreferencePlan:
        pairs = _example_list(self.pairs, "PreferencePlan.pairs")
        examples = validate_examples(_example_list(self.examples, "PreferencePlan.examples"), skills)
        return PreferencePlan(tuple(_pair(item, index, skills) for index, item in enumerate(pairs)), tuple(examples))

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "pairs": len(self.pairs), "examples": len(self.examples)}


def _check_mapping(value: Any, what: str) -> None:
    if not isinstance(value, Mapping):
        raise InvalidPlan(f"Expects {what} to be a dict; actual {_describe(value)}.")


def _check_skill(name: Any, skills: Sequence[str], what: str) -> None:
    if name not in skills:
        raise InvalidPlan(
            f"{what} unknown skill {name!r}.{did_you_mean(str(name), skills)} Expects skills from: {', '.join(skills)}."
        )


def _weight(value: Any, what: str) -> float:
    if (
        isinstance(value, (bool, np.bool_))
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or value < 0
    ):
        raise InvalidPlan(f"Expects a finite, non-negative weight for {what}; actual {_describe(value)}.")
    return float(value)


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{text[:60]}... ({type(value).__name__})" if len(text) > 60 else f"{text} ({type(value).__name__})"


def whole_count(value: Any, what: str) -> int:
    """``value`` as a non-negative int; integer-valued floats (``3.0``, ``np.float32(3)``) are accepted."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise InvalidPlan(f"Expects a whole number of examples for {what}; actual {_describe(value)}.")
    if isinstance(value, numbers.Integral):
        count = int(value)
    else:
        real = float(value)
        if not math.isfinite(real) or not real.is_integer():
            raise InvalidPlan(f"Expects a whole number of examples for {what}; actual {_describe(value)}.")
        count = int(real)
    if count < 0:
        raise InvalidPlan(f"Expects a non-negative count for {what}; actual {count}.")
    return count


def _counts_from_mapping(mapping: Mapping[Any, Any], skills: Sequence[str]) -> CountPlan:
    for name in mapping:
        _check_skill(name, skills, "Plan names")
    return CountPlan({skill: whole_count(mapping.get(skill, 0), f"skill {skill!r}") for skill in skills})


def real_array(value: Any, *, allow_bool: bool = False) -> np.ndarray:
    """``value`` as a float64 array of real numbers, refusing what numpy would quietly convert (``"1"`` and, unless
    ``allow_bool``, ``True`` both become 1.0). Raises TypeError, or ValueError for ragged nested lists."""
    raw = np.asarray(value)
    kinds = "iufb" if allow_bool else "iuf"
    numeric = raw.dtype.kind in kinds or (
        raw.dtype.kind == "O"
        and all(
            isinstance(v, numbers.Real) and (allow_bool or not isinstance(v, (bool, np.bool_))) for v in raw.ravel()
        )
    )
    if not numeric:
        raise TypeError(f"dtype {raw.dtype}")
    return raw.astype(np.float64)


def _counts_from_shares(action: Any, skills: Sequence[str], allowed: int) -> CountPlan:
    """An array of per-skill budget shares, normalised and allocated over ``allowed`` examples (largest
    remainder); all zeros spends nothing. This is the numeric action RL libraries emit (float32 ``Box``)."""
    try:
        array = real_array(action)
    except (ValueError, TypeError) as err:  # ragged nested lists, strings, None, booleans
        raise InvalidPlan(
            f"Expects {len(skills)} numeric per-skill budget shares; actual {_describe(action)} ({err})."
        ) from None
    if array.shape != (len(skills),):
        raise InvalidPlan(
            f"Expects an action of shape ({len(skills)},), one budget share per skill "
            f"({', '.join(skills)}); actual shape {array.shape}."
        )
    if not np.isfinite(array).all() or (array < 0).any():
        raise InvalidPlan(
            f"Expects non-negative, finite budget shares; actual {np.array2string(array, precision=3)}. "
            "For exact counts pass a {skill: count} dict or a CountPlan."
        )
    total = float(array.sum())
    counts = allocate(array / total, allowed) if total > 0 else np.zeros(len(skills), dtype=np.int64)
    return CountPlan(dict(zip(skills, counts.tolist(), strict=True)))


def _example(item: Any, index: int, skills: Sequence[str]) -> Example:
    return _record(item, index, skills, Example, "example", ("question", "answer", "skill"))


def _pair(item: Any, index: int, skills: Sequence[str]) -> PreferencePair:
    return _record(item, index, skills, PreferencePair, "preference pair", ("question", "chosen", "rejected", "skill"))


def _record(item: Any, index: int, skills: Sequence[str], cls: type, noun: str, names: tuple[str, ...]) -> Any:
    """An untrusted example or preference pair (the object, or a dict of its fields) as a clean ``cls`` with
    string fields, a metadata dict and a known skill (the last of ``names``), or :class:`InvalidPlan` by index."""
    listed = ", ".join(names)
    if isinstance(item, Mapping):
        missing = [key for key in names if key not in item]
        if missing:
            raise InvalidPlan(
                f"Expects {noun} {index} to have keys {listed}; actual keys {sorted(map(str, item))} "
                f"(missing {missing})."
            )
        metadata = item.get("metadata") or {}
        fields = tuple(item[name] for name in names)
    elif isinstance(item, cls):
        metadata, fields = item.metadata, tuple(getattr(item, name) for name in names)
    else:
        raise InvalidPlan(
            f"Expects {noun} {index} to be a skills.{cls.__name__} or a dict with {listed}; actual {_describe(item)}."
        )
    for name, value in zip(names, fields, strict=True):
        if not isinstance(value, str):
            raise InvalidPlan(f"Expects {noun} {index}'s {name} to be a string; actual {_describe(value)}.")
    if not isinstance(metadata, Mapping):
        raise InvalidPlan(f"Expects {noun} {index}'s metadata to be a dict; actual {_describe(metadata)}.")
    _check_skill(fields[-1], skills, f"{noun[0].upper()}{noun[1:]} {index} names")
    return cls(*fields, metadata=dict(metadata))


def _example_list(items: Any, what: str) -> Sequence[Any]:
    """``items`` if it is a list-like of examples (a string or a dict is not), else :class:`InvalidPlan`."""
    if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Sequence):
        raise InvalidPlan(f"Expects {what} to be a list of examples; actual {_describe(items)}.")
    return items


def validate_examples(items: Any, skills: Sequence[str]) -> list[Example]:
    """Untrusted examples as clean :class:`Example` objects with known skills, or :class:`InvalidPlan` by index."""
    return [_example(item, index, skills) for index, item in enumerate(_example_list(items, "the examples"))]


def validate_training_items(items: Any, skills: Sequence[str]) -> list[Example | PreferencePair]:
    """What a plan handler returned (examples, and preference pairs for a preference plan) as clean objects with
    known skills, or :class:`InvalidPlan` by index. A dict is a pair when it has a ``chosen`` key."""
    return [
        _pair(item, index, skills)
        if isinstance(item, PreferencePair) or (isinstance(item, Mapping) and "chosen" in item)
        else _example(item, index, skills)
        for index, item in enumerate(_example_list(items, "the training data"))
    ]


def plan_size(plan: Any) -> int:
    """The number of examples a plan of any kind charges to the budget."""
    return whole_count(getattr(plan, "size", None), f"the size of a {getattr(plan, 'kind', '?')!r} plan")


def validate_plan(action: Any, skills: Sequence[str], kinds: Sequence[str], *, allowed: int, why: str = "") -> Any:
    """Turn a teacher's action into a validated plan object of at most ``allowed`` examples.

    Accepts an array of per-skill budget shares (in ``skills`` order; normalised, so it always spends
    ``allowed`` unless all zero), a ``{skill: count}`` mapping, a
    :class:`CountPlan`, an :class:`ExamplesPlan` or a list of examples (``{"question", "answer", "skill"}`` dicts or
    :class:`~skills.task.Example`), or a plan object of a registered ``kind`` (its ``size``
    must be a whole number; its handler's output is verified by the environment). Raises
    :class:`InvalidPlan`, or :class:`BudgetExceeded` (with ``why`` explaining the limit) for a plan that is too big.
    """
    plan = _structure(action, skills, kinds, allowed)
    validated = getattr(plan, "validated", None)
    if callable(validated):  # a plan kind that checks its own contents (ReweightPlan, SynthesisPlan)
        plan = validated(skills)
    size = plan_size(plan)
    if size > allowed:
        raise BudgetExceeded(
            f"Expects a plan of at most {allowed} examples this step{why}; actual {size}. Scale the plan down."
        )
    if isinstance(plan, ExamplesPlan):  # contents only after the size check: a huge plan is refused cheaply
        plan = ExamplesPlan(validate_examples(plan.examples, skills))
    return plan


def _structure(action: Any, skills: Sequence[str], kinds: Sequence[str], allowed: int) -> Any:
    if isinstance(action, CountPlan):
        if not isinstance(action.counts, Mapping):
            raise InvalidPlan(
                f"Expects CountPlan.counts to be a {{skill: count}} dict; actual {_describe(action.counts)}."
            )
        return _counts_from_mapping(action.counts, skills)
    if isinstance(action, ExamplesPlan):
        _example_list(action.examples, "ExamplesPlan.examples")  # plan_size needs its len() next
        return action
    if isinstance(action, Mapping):
        return _counts_from_mapping(action, skills)
    if isinstance(action, (list, tuple)) and all(isinstance(item, (Mapping, Example)) for item in action):
        # A list of examples (what LLM teachers write), not budget shares; an empty one spends nothing.
        return ExamplesPlan(list(action))
    if isinstance(action, (np.ndarray, list, tuple)):
        return _counts_from_shares(action, skills, allowed)
    kind = getattr(action, "kind", None)
    if isinstance(kind, str):
        if kind not in kinds:
            raise InvalidPlan(
                f"Expects a plan kind among {sorted(kinds)}; actual {kind!r}.{did_you_mean(kind, kinds)}"
                " Register new kinds with env.unwrapped.register_plan_kind(kind, handler)."
            )
        return action
    raise InvalidPlan(
        "Expects a plan: an array of per-skill budget shares, a {skill: count} dict, a CountPlan, an ExamplesPlan or a "
        f"registered plan kind; actual {_describe(action)}."
    )
