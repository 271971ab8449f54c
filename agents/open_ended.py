"""Teachers for ``envgym/OpenEnded-v0``, whose action is data: explicit examples the environment verifies.

* ``error-augment``: LLM2LLM (Lee et al. 2024, "LLM2LLM: Boosting LLMs with Novel Iterative Data Enhancement"):
  for each wrong validation answer, make new problems similar to it and train on those. LLM2LLM asks a teacher
  LLM for them; for a procedural task this teacher uses the task's generator instead, with the same skill and
  nearby parameters (``task.similar``, e.g. each operand moved by at most 9), or fresh draws of the skill when the
  task has no ``similar``.
* ``random-examples``: the same budget of examples of random skills: the baseline error-augment must beat.

Both build the task from ``info["task"]`` and only ever see validation errors; the environment still verifies
every example, drops repeats and held-out questions, and charges the budget for all of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from skills.registry import make_task
from skills.task import Example, Task


class _TaskExamples:
    """Shared by the open-ended teachers: the task by name (built once) and examples as plan dicts."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self._tasks: dict[str, Task] = {}

    def _task(self, info: Mapping[str, Any]) -> Task:
        name = info["task"]
        if name not in self._tasks:
            self._tasks[name] = make_task(name)
        return self._tasks[name]

    def _rng(self, info: Mapping[str, Any]) -> np.random.Generator:
        # Seeded by seed and step: stateless, so a resumed episode makes the same choices.
        return np.random.default_rng([self.seed, int(info["step"])])

    @staticmethod
    def _plan(examples: list[Example]) -> list[dict[str, str]]:
        return [{"question": ex.question, "answer": ex.answer, "skill": ex.skill} for ex in examples]

    def _random(self, task: Task, skills: list[str], n: int, rng: np.random.Generator) -> list[Example]:
        picks = rng.choice(len(skills), size=n)
        return [ex for i in range(len(skills)) for ex in task.generate(skills[i], int((picks == i).sum()), rng)]


class RandomExamplesTeacher(_TaskExamples):
    """``budget_next`` examples of skills drawn uniformly at random.

    Example:
        >>> plan = RandomExamplesTeacher().act({}, {"task": "arithmetic", "skills": ["add_carry"], "budget_next": 2,
        ...                                          "step": 0, "errors": []})
        >>> [example["skill"] for example in plan]
        ['add_carry', 'add_carry']
    """

    def act(self, observation: Mapping[str, Any], info: Mapping[str, Any]) -> list[dict[str, str]]:
        rng = self._rng(info)
        return self._plan(self._random(self._task(info), list(info["skills"]), int(info["budget_next"]), rng))


class ErrorAugmentTeacher(_TaskExamples):
    """LLM2LLM-style: the budget shared over the validation errors in ``info["errors"]``, each turned into
    problems of its skill near it (see the module docstring); random examples when there are no errors.

    Example:
        >>> info = {"task": "arithmetic", "skills": ["add_carry"], "budget_next": 3, "step": 0,
        ...         "errors": [{"question": "47+38=", "answer": "84", "gold": "85", "skill": "add_carry"}]}
        >>> plan = ErrorAugmentTeacher().act({}, info)
        >>> len(plan), all(example["skill"] == "add_carry" for example in plan)
        (3, True)
    """

    def act(self, observation: Mapping[str, Any], info: Mapping[str, Any]) -> list[dict[str, str]]:
        task, rng, budget = self._task(info), self._rng(info), int(info["budget_next"])
        errors = [error for error in info["errors"] if error.get("skill") in info["skills"]]
        if not errors:
            return self._plan(self._random(task, list(info["skills"]), budget, rng))
        similar = getattr(task, "similar", None)
        examples: list[Example] = []
        for i, error in enumerate(errors):
            n = budget // len(errors) + (1 if i < budget % len(errors) else 0)
            if callable(similar):
                examples += similar(error["question"], error["skill"], n, rng)
            else:
                examples += task.generate(error["skill"], n, rng)
        return self._plan(examples)
