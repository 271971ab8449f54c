"""ReasoningGymTask: deterministic generation, the datasets' verifiers, registry and held-out splits."""

from __future__ import annotations

import json

import numpy as np
import pytest

from skills import Example, TaskSplits, TrainingPool, make_task, taxonomy, verify_example
from skills.reasoning_gym_task import ReasoningGymTask

DATASETS = ["chain_sum", "gcd"]


@pytest.fixture(scope="module")
def task() -> ReasoningGymTask:
    return ReasoningGymTask(DATASETS)


def test_skills_and_name(task: ReasoningGymTask) -> None:
    assert task.name == "rg:chain_sum,gcd"
    assert [s.name for s in task.skills] == DATASETS
    assert all(s.category == "reasoning_gym" and s.description for s in task.skills)


@pytest.mark.parametrize("skill", DATASETS)
def test_generation_is_deterministic(task: ReasoningGymTask, skill: str) -> None:
    first = task.generate(skill, 10, np.random.default_rng(0))
    again = task.generate(skill, 10, np.random.default_rng(0))
    other = task.generate(skill, 10, np.random.default_rng(1))
    assert len(first) == 10 and all(ex.skill == skill for ex in first)
    assert [(ex.question, ex.answer) for ex in first] == [(ex.question, ex.answer) for ex in again]
    assert [ex.question for ex in first] != [ex.question for ex in other]
    json.dumps([ex.to_dict() for ex in first])  # metadata is JSON-serialisable
    assert task.generate(skill, 0, np.random.default_rng(0)) == []


@pytest.mark.parametrize("skill", DATASETS)
def test_gold_scores_one_and_wrong_scores_less(task: ReasoningGymTask, skill: str) -> None:
    for ex in task.generate(skill, 20, np.random.default_rng(2)):
        assert task.score(ex, ex.answer) == 1.0 and verify_example(task, ex).ok
        assert task.score(ex, ex.answer + "1") < 1.0
        assert task.score(ex, "wrong") == 0.0
        assert task.score(ex, "") == 0.0


def test_score_without_cached_entry_uses_example_fields(task: ReasoningGymTask) -> None:
    ex = task.generate("gcd", 1, np.random.default_rng(3))[0]
    fresh = ReasoningGymTask(DATASETS)  # empty cache: scores from the example's own fields
    assert fresh.score(Example.from_dict(ex.to_dict()), ex.answer) == 1.0
    assert fresh.score(ex, "wrong") == 0.0


def test_make_task_and_taxonomy() -> None:
    task = make_task("rg:chain_sum,gcd")
    assert isinstance(task, ReasoningGymTask)
    graph = taxonomy(task)
    assert {"chain_sum", "gcd"} <= set(graph.nodes)
    assert graph.has_edge("reasoning_gym", "gcd")


def test_splits_and_pool_keep_heldout_out(task: ReasoningGymTask) -> None:
    splits = TaskSplits.build(task, n_val=20, n_test=20, split_seed=0)
    for skill in DATASETS:
        val = {task.heldout_key(ex.question) for ex in splits.val[skill]}
        test = {task.heldout_key(ex.question) for ex in splits.test[skill]}
        assert len(val) == 20 and len(test) == 20 and not val & test
        pool = TrainingPool(splits).sample(skill, 50, np.random.default_rng(4))
        assert len(pool) == 50
        assert not any(splits.is_heldout(ex.question) for ex in pool)
        assert not {task.heldout_key(ex.question) for ex in pool} & (val | test)


def test_bad_names_and_configs() -> None:
    with pytest.raises(ValueError, match="Did you mean 'chain_sum'"):
        ReasoningGymTask(["chain_sun"])
    with pytest.raises(ValueError, match="Did you mean"):
        make_task("rg:gcd,chain_sun")
    with pytest.raises(ValueError, match="at least one"):
        ReasoningGymTask([])
    with pytest.raises(ValueError, match="Invalid config"):
        ReasoningGymTask(["gcd"], configs={"gcd": {"min_numbers": 5, "max_numbers": 2}})
    with pytest.raises(ValueError, match="seed"):
        ReasoningGymTask(["gcd"], configs={"gcd": {"seed": 1}})
    with pytest.raises(ValueError, match="Unknown skill"):
        ReasoningGymTask(["gcd"]).generate("chain_sum", 1, np.random.default_rng(0))


def test_configs_are_applied() -> None:
    task = ReasoningGymTask(["gcd"], configs={"gcd": {"max_value": 20}})
    for ex in task.generate("gcd", 20, np.random.default_rng(5)):
        assert max(ex.metadata["numbers"]) <= 20
