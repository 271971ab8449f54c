"""envgym/OpenEnded-v0: the state is the student's errors as text, the action is data the env referees."""

from __future__ import annotations

import gymnasium as gym
import pytest

import envgym  # noqa: F401 - registers the environments
from agents.open_ended import ErrorAugmentTeacher, RandomExamplesTeacher
from envgym.cli import main
from envgym.error import BudgetExceeded, InvalidPlan
from envgym.open_ended_env import TEXT_CHARSET, error_text
from skills import ArithmeticTask

SMALL = {"steps": 3, "budget": 32, "n_val": 20, "n_test": 20}
TASK = ArithmeticTask()


def _env(**kwargs):
    env = gym.make("envgym/OpenEnded-v0", **{**SMALL, **kwargs})
    obs, info = env.reset(seed=0)
    return env, obs, info


def test_observation_is_the_error_window_as_bounded_text():
    env, obs, info = _env(error_window=3, error_text_chars=120)
    assert env.observation_space.contains(obs) and len(obs["errors"]) <= 120
    assert set(obs["errors"]) <= set(TEXT_CHARSET)
    first = info["errors"][0]
    assert obs["errors"].startswith(f"{first['question']} -> {first['answer']!r}")
    assert obs["errors"].count("\n") <= 3 and len(info["errors"]) > 3  # the full records stay in info
    many = [{"question": "1+1=", "answer": "3", "gold": "2"}] * 50
    assert error_text(many, 64).endswith("...") and len(error_text(many, 64)) <= 64
    assert error_text([{"question": "12×3=", "answer": "é", "gold": "36"}], 200) == "12?3= -> '?' (gold '36')\n"


def test_teacher_examples_are_verified_deduplicated_and_kept_off_heldout_questions():
    env, _, info = _env()
    val_question = env.unwrapped.splits.all_questions("val")[0]
    plan = [
        {"question": "47+38=", "answer": "84"},  # wrong answer, skill inferred (add_carry)
        {"question": "57+38=", "answer": "95"},  # correct, skill inferred
        {"question": "38+57=", "answer": "95"},  # the same question commuted: a duplicate
        {"question": val_question.question, "answer": val_question.answer, "skill": val_question.skill},
    ]
    _, _, _, _, info = env.step(plan)
    assert info["rejections"] == {"duplicate": 1, "wrong_answer": 1}
    assert info["dropped_heldout"] == 1 and info["budget_spent"] == 4
    trained = env.unwrapped.last_training_data
    assert [(ex.question, ex.skill) for ex in trained] == [("57+38=", "add_carry")]


def test_a_wrong_answer_on_a_reasoning_gym_task_is_rejected():
    env, _, _ = _env(task="rg:chain_sum")
    question = "State the final answer to the following arithmetic problem: 860 - 639 + 390 ="  # = 611
    _, _, _, _, info = env.step([{"question": question, "answer": "612", "skill": "chain_sum"}])
    assert info["rejections"] == {"wrong_answer": 1} and env.unwrapped.last_training_data == []


@pytest.mark.parametrize(
    ("action", "error", "message"),
    [
        ({"request": "xyzzy", "n": 4}, InvalidPlan, "matches none"),
        ({"request": "sub_borrow", "n": 4, "extra": 1}, InvalidPlan, "extra keys"),
        ({"request": "sub_borrow", "n": -1}, InvalidPlan, "non-negative"),
        ({"request": "sub_borrow", "n": 33}, BudgetExceeded, "at most 32"),
        ([{"question": "1+1=", "answer": "2"}] * 33, BudgetExceeded, "at most 32"),
        ([{"question": 5, "answer": "2"}], InvalidPlan, "question to be a string"),
        ("teach me", InvalidPlan, "list of examples"),
        ({"add_carry": 5}, InvalidPlan, "list of examples"),
    ],
)
def test_bad_actions_are_refused_and_change_nothing(action, error, message):
    env, _, _ = _env()
    budget = env.unwrapped.budget_left
    with pytest.raises(error, match=message):
        env.step(action)
    assert env.unwrapped.budget_left == budget and env.unwrapped.step_index == 0


@pytest.mark.slow
def test_a_data_request_teaches_the_skill_it_names():
    # The default budget per step: the default student has never seen a borrowing subtraction.
    env, _, _ = _env(budget=1024, n_val=100, n_test=100)
    before, _ = env.unwrapped.evaluate("test")
    for _ in range(3):
        _, _, _, _, info = env.step({"request": "subtraction that needs a borrow", "n": 1024})
    assert "sub_borrow" in info["request_skills"] and info["rejected"] == 0
    after, _ = env.unwrapped.evaluate("test")
    assert after["sub_borrow"] - before["sub_borrow"] > 0.15


def test_error_augment_makes_verified_problems_near_each_error_and_is_deterministic():
    errors = [{"question": "47+38=", "answer": "84", "gold": "85", "skill": "add_carry"}]
    info = {"task": "arithmetic", "skills": ["add_carry"], "budget_next": 20, "step": 2, "errors": errors}
    plan = ErrorAugmentTeacher(seed=1).act({}, info)
    assert plan == ErrorAugmentTeacher(seed=1).act({}, info) != ErrorAugmentTeacher(seed=2).act({}, info)
    assert len(plan) == 20
    from skills.task import Example

    for example in plan:
        assert TASK.verify(Example(**example)).ok
        a, b = map(int, example["question"][:-1].split("+"))
        assert abs(a - 47) <= 9 and abs(b - 38) <= 9
    random_plan = RandomExamplesTeacher(seed=1).act({}, {**info, "skills": ["add_carry", "mul_1d"]})
    assert {example["skill"] for example in random_plan} == {"add_carry", "mul_1d"}


def test_cli_runs_the_open_ended_env_and_refuses_a_teacher_that_does_not_fit(tmp_path, capsys):
    small = ["--steps", "1", "--budget", "32", "--n-val", "10", "--n-test", "10"]
    assert main(["run", "--env", "envgym/OpenEnded-v0", *small, "--out", str(tmp_path / "oe")]) == 0
    assert '"teacher": "error-augment"' in (tmp_path / "oe" / "config.json").read_text()
    capsys.readouterr()
    assert main(["run", "--env", "envgym/OpenEnded-v0", "--teacher", "targeted", *small]) == 2
    out = capsys.readouterr().out
    assert "plans for envgym/SkillList-v0" in out and "error-augment" in out
