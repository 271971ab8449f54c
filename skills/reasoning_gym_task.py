"""Reasoning-gym datasets as a `Task`: one skill per dataset, scored by the dataset's own verifier."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import reasoning_gym
from reasoning_gym.factory import DATASETS

from skills.errors import unknown_name_error
from skills.task import Example, Skill, normalize_question

_MAX_CACHED = 200_000  # original entries kept for scoring; the oldest are dropped beyond this


def _jsonable(value: Any) -> Any:
    """``value`` with tuples/sets as lists, numpy scalars as Python numbers and anything else exotic as str."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    return str(value)


def _description(name: str) -> str:
    doc = (DATASETS[name][0].__doc__ or "").strip()
    return doc.splitlines()[0].strip() if doc else f"reasoning-gym dataset {name!r}."


class ReasoningGymTask:
    """Skills backed by reasoning-gym datasets (``reasoning_gym.factory.DATASETS`` lists the names).

    ``configs`` maps a dataset name to keyword arguments of its config class (not ``size``/``seed``).

    Example:
        >>> import numpy as np
        >>> task = ReasoningGymTask(["chain_sum", "gcd"], configs={"gcd": {"max_value": 100}})
        >>> ex = task.generate("gcd", 1, np.random.default_rng(0))[0]
        >>> task.score(ex, ex.answer), task.score(ex, "wrong")
        (1.0, 0.0)
    """

    def __init__(self, datasets: Sequence[str], configs: dict[str, dict[str, Any]] | None = None) -> None:
        datasets = list(datasets)
        if not datasets:
            raise ValueError("Expects at least one reasoning-gym dataset name, e.g. ['chain_sum']; actual [].")
        for name in datasets:
            if name not in DATASETS:
                raise unknown_name_error("reasoning-gym dataset", name, DATASETS)
        if len(set(datasets)) != len(datasets):
            raise ValueError(f"Expects distinct dataset names; actual {datasets}.")
        self._configs = {name: dict(cfg) for name, cfg in (configs or {}).items()}
        for name, cfg in self._configs.items():
            if name not in datasets:
                raise unknown_name_error("dataset in configs (not in this task)", name, datasets)
            if {"size", "seed"} & set(cfg):
                raise ValueError(f"Expects no 'size' or 'seed' in configs[{name!r}]; generate() sets them.")
        self.name = "rg:" + ",".join(datasets)
        self._skills = [Skill(name, _description(name), "reasoning_gym") for name in datasets]
        # One dataset per skill, built now so a bad config fails here; its score_answer is the verifier.
        self._scorers = {name: self._dataset(name, size=1, seed=0) for name in datasets}
        self._entries: dict[tuple[str, str], dict[str, Any]] = {}  # (skill, question) -> original entry

    def _dataset(self, name: str, *, size: int, seed: int) -> Any:
        try:
            return reasoning_gym.create_dataset(name, size=size, seed=seed, **self._configs.get(name, {}))
        except (TypeError, AssertionError, ValueError) as err:  # reasoning-gym validates configs with assert
            raise ValueError(f"Invalid config for reasoning-gym dataset {name!r}: {err}") from err

    @property
    def skills(self) -> list[Skill]:
        return list(self._skills)

    def generate(self, skill: str, n: int, rng: np.random.Generator) -> list[Example]:
        if skill not in self._scorers:
            raise unknown_name_error("skill", skill, self._scorers)
        if n < 0:
            raise ValueError(f"Expects a non-negative number of examples; actual {n}.")
        if n == 0:
            return []
        seed = int(rng.integers(2**31))
        examples = []
        for entry in self._dataset(skill, size=n, seed=seed):
            # A few open-ended datasets (boxnet, graph_color, rubiks_cube, ...) have no gold answer (None).
            question, answer = str(entry["question"]), "" if entry["answer"] is None else str(entry["answer"])
            self._remember((skill, question), entry)
            examples.append(Example(question, answer, skill, _jsonable(entry.get("metadata") or {})))
        return examples

    def _remember(self, key: tuple[str, str], entry: dict[str, Any]) -> None:
        self._entries.pop(key, None)
        self._entries[key] = entry
        if len(self._entries) > _MAX_CACHED:
            self._entries.pop(next(iter(self._entries)))

    def score(self, example: Example, answer: str) -> float:
        if example.skill not in self._scorers:
            raise unknown_name_error("skill", example.skill, self._scorers)
        entry = self._entries.get((example.skill, example.question)) or {
            "question": example.question,
            "answer": example.answer,
            "metadata": example.metadata,
        }
        try:
            reward = float(self._scorers[example.skill].score_answer(answer, entry))
        except Exception:  # a dataset's verifier may choke on garbage answers: count them as wrong
            return 0.0
        return min(max(reward, 0.0), 1.0) if np.isfinite(reward) else 0.0

    def heldout_key(self, question: str) -> str:
        return normalize_question(question)
