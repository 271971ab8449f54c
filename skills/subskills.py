"""Subskills: the leaves of ``envgym/SkillTree-v0``'s skill tree, and the :class:`SubskillProposer` plug-in point.

DataEnvGym's skill-tree environment (Khan et al. 2024, "DataEnvGym: Data Generation Agents in Teacher
Environments with Student Feedback") grows each skill into subskills that an LLM proposes. For a procedural task
envgym's :class:`BandProposer` proposes *difficulty bands* of the task's own generator instead: ranges of the
parameter a skill's difficulty is measured on (``task.difficulty(example)``: carries in an addition, borrows in
a subtraction; the question's length for a task without one). A band is concrete: its training data is drawn
from the skill's generator and kept when it falls in the band, and its validation accuracy is measured on the
validation questions that fall in it. An LLM proposer (a later issue) implements the same Protocol.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from skills.errors import InvalidConfig, unknown_name_error
from skills.task import Example, Task, skill_names

LENGTH = "question length"


@dataclass(frozen=True)
class Subskill:
    """A band ``low <= difficulty <= high`` of one skill, named ``"<skill>/<feature>=<low>[-<high>]"``."""

    name: str
    skill: str
    description: str
    low: float
    high: float

    def contains(self, task: Task, example: Example) -> bool:
        """Whether ``example`` (a trusted one: generated, or a held-out question) is in this band."""
        return example.skill == self.skill and self.low <= difficulty(task, example) <= self.high

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def difficulty(task: Task, example: Example) -> float:
    """``task.difficulty(example)`` where the task defines it, else the question's length in characters."""
    measure = getattr(task, "difficulty", None)
    return float(measure(example)) if callable(measure) else float(len(example.question))


def difficulty_name(task: Task, skill: str) -> str:
    name = getattr(task, "difficulty_name", None)
    return str(name(skill)) if callable(name) and callable(getattr(task, "difficulty", None)) else LENGTH


@runtime_checkable
class SubskillProposer(Protocol):
    """Proposes new subskills of a skill: up to ``n`` that are not in ``existing``, fewest first when there are
    no more. The same arguments give the same subskills (episodes are seeded and resumable)."""

    def propose(self, task: Task, skill: str, existing: Sequence[Subskill], n: int) -> list[Subskill]: ...


class BandProposer:
    """Difficulty bands of a procedural task's generator, easiest first (a curriculum within the skill).

    The bands of a skill are cut once, from ``sample`` examples of its generator (seed ``seed``; never from
    validation or test questions): each distinct difficulty value is a band when there are at most ``max_bands``
    of them, else values are grouped at quantiles; a band holding less than ``min_share`` of the generator's
    examples is merged into its neighbour, so every band can be sampled and has validation questions.

    Example:
        >>> from skills import ArithmeticTask
        >>> [s.name for s in BandProposer().propose(ArithmeticTask(), "add_3d_carry", [], 3)]
        ['add_3d_carry/carries=1', 'add_3d_carry/carries=2', 'add_3d_carry/carries=3']
    """

    def __init__(self, max_bands: int = 4, sample: int = 2000, min_share: float = 0.05, seed: int = 0) -> None:
        if isinstance(max_bands, bool) or not isinstance(max_bands, int) or max_bands < 1:
            raise InvalidConfig(f"Expects max_bands to be an integer >= 1; actual {max_bands!r}.")
        if isinstance(sample, bool) or not isinstance(sample, int) or sample < 10:
            raise InvalidConfig(f"Expects sample to be an integer >= 10; actual {sample!r}.")
        if not 0.0 <= min_share < 0.5:
            raise InvalidConfig(f"Expects 0 <= min_share < 0.5; actual {min_share!r}.")
        self.max_bands, self.sample, self.min_share, self.seed = max_bands, sample, min_share, seed
        self._bands: dict[tuple[str, str], list[Subskill]] = {}

    def bands(self, task: Task, skill: str) -> list[Subskill]:
        """Every band of ``skill``, easiest first."""
        names = skill_names(task)
        if skill not in names:
            raise unknown_name_error("skill", skill, names)
        key = (task.name, skill)
        if key not in self._bands:
            rng = np.random.default_rng([self.seed, names.index(skill)])
            values = Counter(difficulty(task, ex) for ex in task.generate(skill, self.sample, rng))
            self._bands[key] = self._cut(skill, difficulty_name(task, skill), values)
        return list(self._bands[key])

    def propose(self, task: Task, skill: str, existing: Sequence[Subskill], n: int) -> list[Subskill]:
        taken = {subskill.name for subskill in existing}
        return [band for band in self.bands(task, skill) if band.name not in taken][: max(0, n)]

    def _cut(self, skill: str, feature: str, values: Counter[float]) -> list[Subskill]:
        total = sum(values.values())
        ordered = sorted(values)
        groups: list[list[float]] = []
        if len(ordered) <= self.max_bands:
            groups = [[value] for value in ordered]
        else:  # quantile groups: a group closes once the running share passes its quantile
            running, quantile, group = 0, 1, []
            for value in ordered:
                group.append(value)
                running += values[value]
                if running / total >= quantile / self.max_bands:
                    groups.append(group)
                    group, quantile = [], quantile + 1
            if group:
                groups.append(group)
        merged: list[list[float]] = []
        for group in groups:  # a band too rare to sample or measure joins its neighbour
            if merged and min(_share(merged[-1], values, total), _share(group, values, total)) < self.min_share:
                merged[-1] += group
            else:
                merged.append(group)
        return [self._band(skill, feature, group[0], group[-1]) for group in merged]

    @staticmethod
    def _band(skill: str, feature: str, low: float, high: float) -> Subskill:
        def text(value: float) -> str:
            return str(int(value)) if float(value).is_integer() else f"{value:g}"

        short = feature.split(" (")[0].replace(" ", "_")
        span = text(low) if low == high else f"{text(low)}-{text(high)}"
        words = f"{feature} = {span}" if low == high else f"{feature} in {text(low)}..{text(high)}"
        return Subskill(f"{skill}/{short}={span}", skill, f"{skill} questions where {words}", float(low), float(high))


def _share(group: list[float], values: Counter[float], total: int) -> float:
    return sum(values[value] for value in group) / total


def make_proposer(spec: Any) -> SubskillProposer:
    """``"bands"`` (the default :class:`BandProposer`) or an object with ``propose``."""
    if spec == "bands":
        return BandProposer()
    if isinstance(spec, str):
        raise unknown_name_error("subskill proposer", spec, ["bands"])
    if not callable(getattr(spec, "propose", None)):
        raise InvalidConfig(
            f"Expects a subskill proposer: 'bands' or an object with propose(task, skill, existing, n); "
            f"actual {type(spec).__name__}."
        )
    return spec
