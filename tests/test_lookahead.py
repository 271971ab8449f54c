"""Float share actions that RL libraries can drive, snapshot/restore, and the oracle teacher."""

import json
import os

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import envgym
from agents.base import allocate
from agents.oracle import OracleTeacher
from envgym.error import InvalidConfig, InvalidPlan
from skills import ArithmeticTask, Example, Verdict
from skills.arithmetic import solve


@pytest.fixture(scope="module")
def env():
    env = gym.make("envgym/SkillList-v0", steps=100, budget=32, n_val=8, n_test=8)
    yield env
    env.close()


# -- the numeric action: budget shares -------------------------------------------------------------------------
def test_float_shares_are_normalised_and_allocated_by_largest_remainder(env):
    env.reset(seed=0)
    shares = np.array([0.5, 0.25, 0.25, 0, 0, 0, 0, 0], dtype=np.float32) * 3  # not normalised: scaled by 3
    _, _, _, _, info = env.step(shares)
    assert info["plan"]["counts"]["add_no_carry"] == 16 and info["budget_spent"] == 32
    _, _, _, _, info = env.step(np.array([1, 1, 1, 0, 0, 0, 0, 0], dtype=np.float32))
    assert [info["plan"]["counts"][s] for s in ("add_no_carry", "add_carry", "add_3d_carry")] == [11, 11, 10]
    _, _, _, _, info = env.step(np.zeros(8, dtype=np.float32))  # all zeros: spend nothing
    assert info["budget_spent"] == 0 and info["train_loss"] is None


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (np.array([np.nan, 1, 0, 0, 0, 0, 0, 0]), "non-negative, finite"),
        (np.array([np.inf, 1, 0, 0, 0, 0, 0, 0]), "non-negative, finite"),
        (np.array([-0.1, 1, 0, 0, 0, 0, 0, 0]), "non-negative, finite"),
        (np.ones(7, dtype=np.float32), r"shape \(8,\)"),
        (np.ones((8, 1), dtype=np.float32), r"shape \(8,\)"),
        (["a"] * 8, "numeric per-skill budget shares"),
    ],
)
def test_bad_share_actions_get_a_clear_error(env, action, message):
    env.reset(seed=0)
    with pytest.raises(InvalidPlan, match=message):
        env.step(action)


@pytest.mark.slow
def test_gymnasium_and_stable_baselines3_checkers_pass():
    env = gym.make("envgym/SkillList-v0", steps=2, budget=16, n_val=4, n_test=4)
    check_env(env.unwrapped, skip_render_check=True)
    sb3 = pytest.importorskip("stable_baselines3.common.env_checker")
    sb3.check_env(env.unwrapped, warn=True, skip_render_check=True)
    sample = env.action_space.sample()
    assert sample.dtype == np.float32 and env.action_space.contains(sample)


def test_prerequisites_reach_the_teacher(env):
    _, info = env.reset(seed=0)
    assert ["add_carry", "add_3d_carry"] in info["prerequisites"]


# -- snapshot / restore --------------------------------------------------------------------------------------
@pytest.mark.slow
def test_restore_then_the_same_step_gives_identical_numbers(env):
    base = env.unwrapped
    env.reset(seed=5)
    env.step({"sub_borrow": 32})
    snap = base.snapshot()
    first = env.step({"sub_borrow": 16, "mul_1d": 16})
    first_data = [e.question for e in base.last_training_data]
    weights = [p.detach().clone() for p in base.student.model.parameters()]
    for _ in range(2):  # a snapshot can be restored more than once
        base.restore(snap)
        assert base.step_index == 1
        again = env.step({"sub_borrow": 16, "mul_1d": 16})
        assert again[1] == first[1] and np.array_equal(again[0]["accuracy"], first[0]["accuracy"])
        assert [e.question for e in base.last_training_data] == first_data
        assert all(torch.equal(a, b) for a, b in zip(base.student.model.parameters(), weights, strict=True))
    with pytest.raises(InvalidConfig, match="EnvSnapshot"):
        base.restore({"not": "a snapshot"})


# -- the oracle, on a scripted student ------------------------------------------------------------------------
class ScriptedStudent:
    """A Student whose competence is a rule: it answers a skill's questions correctly once it has trained on at
    least ``threshold[skill]`` examples of it in total. No snapshot(): the env falls back to save/load."""

    def __init__(self, threshold):
        self.threshold = threshold
        self.task = ArithmeticTask()
        self.seen = dict.fromkeys(threshold, 0)

    def _skill(self, question):
        for skill in self.threshold:
            if self.task.verify(Example(question, solve(question), skill)).verdict is not Verdict.WRONG_SKILL:
                return skill
        raise AssertionError(question)

    def train(self, examples, *, seed):
        for example in examples:
            self.seen[example.skill] += 1
        return {"loss": 0.0}

    def answer(self, questions):
        return [solve(q) if self.seen[self._skill(q)] >= self.threshold[self._skill(q)] else "?" for q in questions]

    def reset(self):
        self.seen = dict.fromkeys(self.threshold, 0)

    def save(self, directory):
        os.makedirs(directory, exist_ok=True)
        with open(f"{directory}/seen.json", "w") as f:
            json.dump(self.seen, f)

    def load(self, directory):
        with open(f"{directory}/seen.json") as f:
            self.seen = json.load(f)

    def num_parameters(self):
        return 0


def test_the_oracle_picks_the_candidate_with_the_best_validation_gain():
    skills = ["add_carry", "sub_borrow", "mul_1d"]
    threshold = {"add_carry": 20, "sub_borrow": 12, "mul_1d": 200}
    env = gym.make(
        "envgym/SkillList-v0",
        task=ArithmeticTask(skills),
        student=ScriptedStudent(threshold),
        steps=2,
        budget=30,
        n_val=5,
        n_test=5,
    )
    obs, info = env.reset(seed=0)
    oracle = OracleTeacher(candidates=6, seed=3)
    oracle.attach(env)
    plan = oracle.act(obs, info)

    # By hand: a candidate gains 1/3 of validation accuracy for each skill it gives at least its threshold.
    def gain(counts):
        return sum(counts[s] >= threshold[s] for s in skills) / 3

    accuracy = np.asarray(obs["accuracy"], dtype=np.float64)
    proposals = [dict(zip(skills, allocate(p, 30).tolist(), strict=True)) for p in oracle.proposals(accuracy, 0)]
    best = max(gain(p) for p in proposals)
    assert gain(plan) == best and plan == next(p for p in proposals if gain(p) == best)
    assert oracle.trial_steps == 6 and oracle.extra_examples == 6 * 30
    assert env.unwrapped.step_index == 0 and env.unwrapped.budget_left == 60  # trials left no trace
    _, reward, _, _, _ = env.step(plan)
    assert reward == pytest.approx(best)


@pytest.mark.slow
def test_the_oracle_runs_in_an_episode_and_reports_its_extra_training(tmp_path):
    env = gym.make("envgym/SkillList-v0", steps=1, budget=16, n_val=5, n_test=5)
    report = envgym.run_episode(env, OracleTeacher(candidates=2), tmp_path / "oracle", progress=False)
    assert report["teacher_state"] == {"extra_examples": 32, "trial_steps": 2}
    with pytest.raises(InvalidConfig, match="attach"):
        OracleTeacher().act({"accuracy": [0.5], "step": 0}, {"skills": ["a"], "budget_next": 1})


@pytest.mark.slow
def test_ppo_example_trains_a_teacher_policy_through_real_env_steps(monkeypatch):
    pytest.importorskip("stable_baselines3")
    from pathlib import Path

    monkeypatch.chdir(Path(__file__).parents[1])
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1]))
    from examples.ppo_teacher import train_ppo

    model, env = train_ppo(timesteps=4, seed=0, n_val=5, n_test=5)
    assert model.num_timesteps == 4  # PPO drove 4 real training steps of the student
    obs, _ = env.reset(seed=1)
    shares, _ = model.predict(obs, deterministic=True)
    _, _, _, _, info = env.step(shares)
    assert info["budget_spent"] == 64
