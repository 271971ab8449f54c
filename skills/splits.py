"""Held-out validation/test splits and a training pool that never overlaps them.

A salted hash of each question's held-out key (``task.heldout_key``) reserves a fixed share of every task's
question space for evaluation. Validation and test questions are drawn only from that reserved part; every
training example — the base student's curriculum, procedural pool data, a teacher's own examples — is dropped
if its key is reserved. So no split size or seed can put a val/test question into any training data.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from skills.errors import InvalidConfig
from skills.task import Example, Task, skill_names

HELDOUT_SALT = "envgym-heldout-v1"


def is_reserved(task: Task, question: str, heldout_fraction: float) -> bool:
    """Whether ``question`` falls in the task's reserved (evaluation-only) part of the question space."""
    key = f"{HELDOUT_SALT}:{task.name}:{task.heldout_key(question)}"
    bucket = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % 10_000
    return bucket < heldout_fraction * 10_000


@dataclass
class TaskSplits:
    """Validation and test questions for every skill of a task, fixed by ``split_seed``.

    The validation split produces the feedback a teacher sees; the test split is only used for the final
    report. Training examples go through :meth:`filter_training`.

    Example:
        >>> from skills import ArithmeticTask
        >>> splits = TaskSplits.build(ArithmeticTask(), n_val=50, n_test=50, split_seed=0)
        >>> len(splits.val["add_carry"]), len(splits.test["add_carry"])
        (50, 50)
    """

    task: Task
    val: dict[str, list[Example]]
    test: dict[str, list[Example]]
    heldout_fraction: float = 0.3

    @classmethod
    def build(
        cls, task: Task, *, n_val: int, n_test: int, split_seed: int, heldout_fraction: float = 0.3
    ) -> TaskSplits:
        if n_val < 1 or n_test < 1:
            raise InvalidConfig(f"Expects n_val >= 1 and n_test >= 1; actual n_val={n_val}, n_test={n_test}.")
        if not 0.0 < heldout_fraction < 1.0:
            raise InvalidConfig(f"Expects 0 < heldout_fraction < 1; actual {heldout_fraction}.")
        val: dict[str, list[Example]] = {}
        test: dict[str, list[Example]] = {}
        for index, skill in enumerate(skill_names(task)):
            rng = np.random.default_rng([split_seed, index])
            unique = _reserved_examples(task, skill, n_val + n_test, rng, heldout_fraction)
            val[skill], test[skill] = unique[:n_val], unique[n_val:]
        return cls(task=task, val=val, test=test, heldout_fraction=heldout_fraction)

    def is_heldout(self, question: str) -> bool:
        return is_reserved(self.task, question, self.heldout_fraction)

    def filter_training(self, examples: Iterable[Example]) -> tuple[list[Example], int]:
        """Keep the examples whose question is not held out; also return how many were dropped."""
        examples = list(examples)
        kept = [ex for ex in examples if not self.is_heldout(ex.question)]
        return kept, len(examples) - len(kept)

    def all_questions(self, split: str) -> list[Example]:
        if split not in ("val", "test"):
            raise InvalidConfig(f"Expects split 'val' or 'test'; actual {split!r}.")
        source = self.val if split == "val" else self.test
        return [ex for skill in skill_names(self.task) for ex in source[skill]]


def _reserved_examples(
    task: Task, skill: str, n: int, rng: np.random.Generator, heldout_fraction: float
) -> list[Example]:
    """``n`` reserved examples of ``skill`` with distinct held-out keys."""
    out: list[Example] = []
    seen: set[str] = set()
    for _ in range(100):
        for ex in task.generate(skill, max(64, 4 * (n - len(out))), rng):
            key = task.heldout_key(ex.question)
            if key not in seen and is_reserved(task, ex.question, heldout_fraction):
                seen.add(key)
                out.append(ex)
                if len(out) == n:
                    return out
    raise InvalidConfig(
        f"Skill {skill!r} of task {task.name!r} yields fewer than {n} distinct held-out questions "
        f"(found {len(out)}). Ask for smaller n_val/n_test."
    )


class TrainingPool:
    """Draws verified, held-out-free training examples for skills from the task's generator.

    ``dropped`` counts, per skill, the generated examples discarded because they are held out.
    """

    def __init__(self, splits: TaskSplits) -> None:
        self.splits = splits
        self.dropped: Counter[str] = Counter()

    def sample(
        self,
        skill: str,
        n: int,
        rng: np.random.Generator,
        keep: Callable[[Example], bool] | None = None,
        *,
        distinct: bool = True,
    ) -> list[Example]:
        """``n`` training examples of ``skill``; with ``keep``, only generated examples it accepts (a subskill's
        band: rejection sampling from the skill's generator).

        ``distinct`` (the default, what a plan gets): each a different question by held-out key, so a plan never
        trains twice on one question; a skill with fewer than ``n`` training questions (a small file) gives all it
        has. ``distinct=False`` draws with repeats (the default student's pre-training stream)."""
        out: list[Example] = []
        seen: set[str] = set()
        drawn = repeats = 0
        while len(out) < n:
            generated = self.splits.task.generate(skill, n - len(out), rng)
            drawn += len(generated)
            if keep is not None:
                generated = [ex for ex in generated if keep(ex)]
                if drawn > 1000 * n and not out and not generated:
                    raise InvalidConfig(
                        f"Expects the generator of skill {skill!r} to produce examples of the requested subset; "
                        f"none in {drawn} draws. Choose a subset (subskill band) the generator reaches."
                    )
            kept, dropped = self.splits.filter_training(generated)
            self.dropped[skill] += dropped
            for example in kept:  # a round draws at most what is missing, so ``out`` never passes ``n``
                if distinct:
                    key = self.splits.task.heldout_key(example.question)
                    if key in seen:
                        repeats += 1
                        continue
                    seen.add(key)
                out.append(example)
            if drawn > 1000 * n and not out:  # a finite task (a file of problems) whose skill is all held out
                raise InvalidConfig(
                    f"Expects skill {skill!r} to have training questions outside the held-out share; none in "
                    f"{drawn} draws (a small file puts every problem of a skill in validation/test). Add problems "
                    "of that skill, or drop it."
                )
            if repeats > 20 * n + 100:  # a finite skill whose every training question is already in ``out``
                break
        return out

    def sample_plan(
        self,
        counts: dict[str, int],
        rng: np.random.Generator,
        *,
        distinct: bool = True,
        keep: dict[str, Callable[[Example], bool]] | None = None,
    ) -> list[Example]:
        """Examples for ``{skill: count}``, shuffled with ``rng`` (``distinct``, and ``keep`` per skill: see
        :meth:`sample`)."""
        keep = keep or {}
        examples = [
            ex
            for skill, count in counts.items()
            if count > 0
            for ex in self.sample(skill, count, rng, keep.get(skill), distinct=distinct)
        ]
        return [examples[i] for i in rng.permutation(len(examples))]
