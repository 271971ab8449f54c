"""A fixed training pool (STAT's MATH-train) and its Skill-Map.

By default envgym draws every plan's data fresh from the task's generator: an unlimited pool, where re-weighting a
skill and asking for more of it are the same thing. STAT-Sel re-weights a *fixed* pool, so an environment can be
given one (``pool_size=N``: N examples drawn once per episode seed, equal shares per skill, distinct questions; or
``pool_file=path``: a JSONL file of ``{"question", "answer", "skill"}``). Plans then select from it: count plans take
their examples of a skill from the pool's examples of that skill, re-weighting plans draw by weight, synthesis takes
its reference examples from it. Uniform SFT on the pool is the uniform teacher on such an environment.

The Skill-Map (:attr:`FixedPool.by_skill`) maps each pool example to its skill label.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from skills.errors import InvalidConfig
from skills.splits import TrainingPool
from skills.storage import read_examples_jsonl
from skills.task import Example


class FixedPool:
    """A fixed list of training examples (no held-out question among them, one per canonical question) and the
    Skill-Map from its examples to their skills.

    ``generated``: the task's generator made them (gold by construction); a pool loaded from a file is verified
    by the environment's referee whenever a plan draws from it.

    Example:
        >>> import numpy as np
        >>> from skills import ArithmeticTask
        >>> from skills.splits import TaskSplits, TrainingPool
        >>> splits = TaskSplits.build(ArithmeticTask(["add_carry", "sub_borrow"]), n_val=5, n_test=5, split_seed=0)
        >>> pool = FixedPool.draw(TrainingPool(splits), 10, np.random.default_rng(0))
        >>> {skill: len(rows) for skill, rows in pool.by_skill.items()}
        {'add_carry': 5, 'sub_borrow': 5}
    """

    def __init__(self, examples: Sequence[Example], *, generated: bool) -> None:
        self.examples = list(examples)
        self.generated = generated
        self.by_skill: dict[str, list[int]] = {}
        for index, example in enumerate(self.examples):
            self.by_skill.setdefault(example.skill, []).append(index)

    def __len__(self) -> int:
        return len(self.examples)

    @classmethod
    def draw(cls, pool: TrainingPool, size: int, rng: np.random.Generator) -> FixedPool:
        """``size`` examples from the task's generator, in equal shares per skill (largest remainder)."""
        skills = [skill.name for skill in pool.splits.task.skills]
        counts = [size // len(skills) + (index < size % len(skills)) for index in range(len(skills))]
        examples = [ex for skill, n in zip(skills, counts, strict=True) for ex in pool.sample(skill, n, rng)]
        return cls(examples, generated=True)

    @classmethod
    def load(cls, path: str | Path, pool: TrainingPool, skills: Sequence[str]) -> tuple[FixedPool, dict[str, int]]:
        """The examples of a JSONL file with known skills, minus held-out questions and repeats of a canonical
        question (counted in the returned ``{"dropped_heldout": n, "duplicates": m}``)."""
        try:
            rows = read_examples_jsonl(Path(path))
        except (OSError, ValueError) as err:
            raise InvalidConfig(
                f"Expects pool_file to be a JSONL file of {{question, answer, skill}} lines; could not read "
                f"{str(path)!r} ({err})."
            ) from None
        unknown = sorted({ex.skill for ex in rows} - set(skills))
        if unknown:
            raise InvalidConfig(
                f"Expects pool_file's skills among the task's ({', '.join(skills)}); actual also {unknown} in "
                f"{str(path)!r}. Drop those lines or choose the matching task."
            )
        # Without the file's metadata: a line cannot vouch for itself (e.g. claim an LLM engine's self-consistency).
        rows = [Example(ex.question, ex.answer, ex.skill) for ex in rows]
        kept, dropped = pool.splits.filter_training(rows)
        unique: list[Example] = []
        seen: set[str] = set()
        for example in kept:
            key = pool.splits.task.heldout_key(example.question)
            if key not in seen:
                seen.add(key)
                unique.append(example)
        if not unique:
            raise InvalidConfig(f"Expects pool_file {str(path)!r} to hold training examples; none is left.")
        return cls(unique, generated=False), {"dropped_heldout": dropped, "duplicates": len(kept) - len(unique)}

    def sample_counts(self, counts: Mapping[str, int], rng: np.random.Generator) -> tuple[list[Example], int]:
        """``counts[skill]`` distinct pool examples of each skill (all it has when it has fewer), shuffled; also
        how many were asked for beyond what the pool holds."""
        picked: list[int] = []
        short = 0
        for skill, count in counts.items():
            rows = self.by_skill.get(skill, [])
            take = min(count, len(rows))
            short += count - take
            if take:
                picked += [rows[i] for i in rng.choice(len(rows), take, replace=False)]
        return [self.examples[i] for i in rng.permutation(picked)], short

    def sample_weighted(self, size: int, weights: Mapping[int, float], rng: np.random.Generator) -> list[Example]:
        """``size`` distinct pool examples drawn with probability proportional to ``weights`` (pool index ->
        weight; indices not named weigh 0), at most as many as have a positive weight."""
        indices = np.array([i for i, w in weights.items() if w > 0], dtype=np.int64)
        if not len(indices) or size <= 0:
            return []
        p = np.array([weights[int(i)] for i in indices], dtype=np.float64)
        take = min(size, len(indices))
        return [self.examples[int(i)] for i in rng.choice(indices, take, replace=False, p=p / p.sum())]

    def references(self, skill: str, k: int, rng: np.random.Generator) -> list[Example]:
        """``k`` pool examples of ``skill`` (fewer when it has fewer): STAT-Syn's references."""
        rows = self.by_skill.get(skill, [])
        return [self.examples[rows[i]] for i in rng.choice(len(rows), min(k, len(rows)), replace=False)]
