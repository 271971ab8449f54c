"""The code task in the environments: the referee runs teachers' programs in the sandbox, every structure takes it,
and the default student learns a taught skill."""

from __future__ import annotations

import json

import gymnasium as gym
import pytest

import envgym
from envgym import TeachingEnv, check_teaching_env
from envgym.error import InvalidConfig
from envgym.plans import ExamplesPlan
from skills.code import FAMILIES, MAX_ANSWER_CHARS

TINY = {"task": "code", "steps": 2, "budget": 16, "n_val": 5, "n_test": 5}


def test_a_code_env_sizes_the_default_students_generation_room_and_the_callers_fields_win():
    env = gym.make("envgym/SkillList-v0", **TINY)
    assert env.unwrapped.student.config.max_new_tokens == MAX_ANSWER_CHARS + 1
    with pytest.raises(InvalidConfig, match=r"max_new_tokens >= \d+ for task 'code'"):
        gym.make("envgym/SkillList-v0", **TINY, student_config={"max_new_tokens": 8})


def test_the_referee_trains_on_verified_programs_only():
    env = gym.make("envgym/SkillList-v0", **TINY)
    env.reset(seed=0)
    examples = [
        {"question": "f(1)=8. Return x plus 7.", "answer": "def f(x): return x+7", "skill": "add_const"},
        {"question": "f(1)=9. Return x plus 8.", "answer": "def f(x): return x+7", "skill": "add_const"},  # wrong
        {"question": "f(1)=10. Return x plus 9.", "answer": "import os; os.system('ls')", "skill": "add_const"},
        {"question": "f(1)=12. Return x plus 10.", "answer": "def f(x): return x+10", "skill": "add_const"},  # lie
        {"question": "f(1)=12. Return x plus 11.", "answer": "def f(x): return x+11", "skill": "loop"},
    ]
    _, _, _, _, info = env.step(ExamplesPlan(examples))
    assert info["budget_spent"] == 5
    assert info["rejections"] == {"malformed": 1, "wrong_answer": 2, "wrong_skill": 1}
    rows = {row["index"]: row for row in info["rejected_examples"]}
    assert {i: row["reason"] for i, row in rows.items()} == {
        1: "wrong_answer",
        2: "wrong_answer",
        3: "malformed",
        4: "wrong_skill",
    }
    assert "defines no function f" in rows[2]["detail"] and "contradicts its spec" in rows[3]["detail"]
    trained = env.unwrapped.last_training_data
    assert [ex.question for ex in trained] == [examples[0]["question"]] or info["dropped_heldout"] == 1


@pytest.mark.slow
@pytest.mark.parametrize("env_id", sorted(envgym.ENV_IDS))
def test_every_structure_keeps_the_teaching_contract_on_the_code_task(env_id):
    if env_id == "envgym/InstructionFollowing-v0":
        pytest.skip("that id fixes its task to ifeval-like")
    env = gym.make(env_id, **TINY)
    assert isinstance(env.unwrapped, TeachingEnv) and env.unwrapped.task.name == "code"
    check_teaching_env(env)


@pytest.mark.slow
def test_the_default_students_pass_rate_rises_on_a_taught_skill():
    """Four steps of 1,024 add_const examples, at a higher learning rate and smaller batches than arithmetic's
    defaults (a new output format: 256 optimizer steps). Measured outside the env with the same training: pass rate
    0.00, 0.02, 0.16, 0.80 after each 1,024 examples."""
    env = gym.make(
        "envgym/SkillList-v0",
        task="code",
        steps=4,
        budget=1024,
        n_val=20,
        n_test=20,
        student_config={"learning_rate": 1e-3, "batch_size": 32},
    )
    env.reset(seed=0)
    before = env.unwrapped.accuracy["add_const"]
    for _ in range(4):
        env.step({"add_const": 1024})
    after = env.unwrapped.accuracy["add_const"]
    others = [acc for skill, acc in env.unwrapped.accuracy.items() if skill != "add_const"]
    print(f"\nadd_const pass rate {before:.2f} -> {after:.2f}; the untaught skills at most {max(others):.2f}")
    assert before == 0.0 and after >= 0.3, (before, after)
    assert max(others) < after


@pytest.mark.slow
def test_envgym_run_and_bench_take_the_code_task_by_name(tmp_path, capsys):
    from envgym.cli import main

    flags = ["--task", "code", "--steps", "1", "--budget", "16", "--n-val", "5", "--n-test", "5"]
    assert main(["run", *flags, "--out", str(tmp_path / "run")]) == 0
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert set(report["test_accuracy"]["per_skill"]) == set(FAMILIES)
    out = tmp_path / "bench"
    grid = ["--teachers", "uniform,stat-sel", "--seeds", "0", "--jobs", "2"]  # stat-sel: the missing-skill profile
    assert main(["bench", *grid, *flags, "--out", str(out)]) == 0
    board = json.loads((out / "leaderboard.json").read_text())
    assert board["env_kwargs"]["task"] == "code" and board["episodes"]["finished"] == 2


class _CopiesTheExampleCall:
    """An exam student that answers every code question with a program that returns the output its question's
    example call shows, whatever the input: right on the visible test, wrong on nearly every hidden one."""

    name = "memoriser"

    def complete(self, prompts, *, stop, seed):
        shown = [p.rsplit("Question: ", 1)[1].split("=", 1)[1].split(". ", 1)[0] for p in prompts]
        return [f"Answer: def f(*args): return {output}" for output in shown]


def test_lbt_scores_code_exams_on_the_visible_tests_and_evaluation_on_the_hidden_ones():
    from envgym.lbt_env import LbTEnv

    env = LbTEnv(task="code", students=[_CopiesTheExampleCall()], problems=2, exam_size=4, n_val=5, n_test=5)
    env.reset(seed=0)
    problem = env.teaching_problems[0]
    exam = env.exam_for(problem, seed=0)
    result = env.exam_result("", exam, seed=0)
    assert result.score == 1.0  # each passes its question's own example call
    hidden = env.task.score_many(list(exam), result.answers["memoriser"])
    assert max(hidden) < 1.0
