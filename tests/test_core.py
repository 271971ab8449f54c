"""The TeachingEnv core: the contract checker over every registered env, resume without re-evaluation, and run
directories that hold the env's own configuration."""

from __future__ import annotations

import copy
import gc
import json
import pickle
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from plain_student import PlainStudent

import envgym
from agents import UniformTeacher
from envgym import SkillListEnv, TeachingEnv, check_teaching_env
from envgym.cli import main
from envgym.error import DamagedCheckpoint, InvalidConfig, InvalidPlan, UnknownName

TINY = {"steps": 3, "budget": 16, "n_val": 5, "n_test": 5}


@pytest.mark.slow
@pytest.mark.parametrize("env_id", sorted(envgym.ENV_IDS))
def test_every_registered_env_keeps_the_teaching_contract(env_id):
    env = gym.make(env_id, **TINY)
    assert isinstance(env.unwrapped, TeachingEnv)
    check_teaching_env(env)
    clone = pickle.loads(pickle.dumps(env.unwrapped))
    assert clone.config == env.unwrapped.config
    assert copy.deepcopy(env.unwrapped).budget_left == env.unwrapped.budget_left


class _NoisyReward(SkillListEnv):
    def _reward(self, before, after):
        return float(np.random.default_rng().random())  # unseeded: breaks determinism


class _LeaksTest(SkillListEnv):
    def _info(self):
        info = super()._info()
        info["hint"] = self.splits.all_questions("test")[0].question
        return info


class _IgnoresBadPlans(SkillListEnv):
    def _plan(self, action):
        if isinstance(action, dict) and "no_such_skill" in action:
            return super()._plan({})
        return super()._plan(action)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("env_class", "message"),
    [
        (_NoisyReward, "same seed"),
        (_LeaksTest, "test questions appear"),
        (_IgnoresBadPlans, "unknown skill was accepted"),
    ],
)
def test_the_checker_names_a_broken_promise(env_class, message):
    with pytest.raises(InvalidConfig, match=message):
        check_teaching_env(env_class(**TINY))


def test_resume_from_a_checkpoint_returns_the_saved_observation_without_evaluating(tmp_path):
    env = SkillListEnv(**TINY)
    env.reset(seed=3)
    observation, _, _, _, info = env.step({"sub_borrow": 16})
    env.save_checkpoint(tmp_path / "ckpt")
    fresh = SkillListEnv(**TINY)
    calls = []
    answer = fresh.student.answer
    fresh.student.answer = lambda questions: calls.append(len(questions)) or answer(questions)
    resumed, resumed_info = fresh.reset(options={"checkpoint": tmp_path / "ckpt"})
    assert calls == []  # no wasted evaluation
    assert json.dumps(resumed_info, sort_keys=True) == json.dumps(info, sort_keys=True)
    assert all(np.array_equal(resumed[key], observation[key]) for key in observation)
    assert fresh.step_index == 1 and fresh.budget_left == env.budget_left
    with pytest.raises(UnknownName, match="Did you mean 'checkpoint'"):
        fresh.reset(options={"checkpiont": tmp_path / "ckpt"})


def test_a_checkpoint_whose_state_lacks_fields_is_refused_and_changes_nothing(tmp_path):
    env = SkillListEnv(**TINY)
    env.reset(seed=3)
    env.step({"sub_borrow": 16})
    env.save_checkpoint(tmp_path / "ckpt")
    state_path = tmp_path / "ckpt" / "env_state.json"
    state = json.loads(state_path.read_text())
    del state["budget_left"]
    state_path.write_text(json.dumps(state))
    fresh = SkillListEnv(**TINY)
    fresh.reset(seed=5)
    before = (fresh.step_index, fresh.budget_left, dict(fresh.accuracy))
    with pytest.raises(DamagedCheckpoint, match=r"ckpt/env_state.json' lacks \['budget_left'\]"):
        fresh.load_checkpoint(tmp_path / "ckpt")
    assert (fresh.step_index, fresh.budget_left, dict(fresh.accuracy)) == before
    state_path.write_text(json.dumps(state)[:-10])  # cut short, as by a crash mid-write
    with pytest.raises(DamagedCheckpoint, match=r"^Checkpoint file '.*ckpt/env_state.json' is damaged"):
        fresh.load_checkpoint(tmp_path / "ckpt")
    assert (fresh.step_index, fresh.budget_left, dict(fresh.accuracy)) == before


@pytest.mark.slow
def test_an_env_built_without_gym_make_is_resumable_from_the_cli(tmp_path):
    from envgym.error import TeacherError

    class StopsAtStep2(UniformTeacher):
        def act(self, observation, info):
            if info["step"] == 1:
                raise RuntimeError("interrupted")
            return super().act(observation, info)

    kwargs = {"steps": 2, "budget": 16, "n_val": 10, "n_test": 10}
    full = envgym.run_episode(SkillListEnv(**kwargs), UniformTeacher(), tmp_path / "full", seed=1, progress=False)
    out = tmp_path / "direct"
    with pytest.raises(TeacherError):
        envgym.run_episode(SkillListEnv(**kwargs), StopsAtStep2(), out, seed=1, teacher_name="uniform")
    config = json.loads((out / "config.json").read_text())
    assert config["env_id"] == "envgym/SkillList-v0" and "objects" not in config
    assert {key: config["env_kwargs"][key] for key in kwargs} == kwargs
    assert main(["run", "--resume", str(out)]) == 0
    assert json.loads((out / "report.json").read_text())["test_accuracy"] == full["test_accuracy"]


def test_a_run_with_a_python_student_object_says_how_to_resume_it(tmp_path, default_dir):
    from students import HFStudent

    env = SkillListEnv(student=HFStudent(default_dir), steps=1, budget=8, n_val=5, n_test=5)
    envgym.run_episode(env, UniformTeacher(), tmp_path / "obj", seed=0, progress=False)
    config = json.loads((tmp_path / "obj" / "config.json").read_text())
    assert "student" in config["objects"] and "student" not in config["env_kwargs"]
    assert main(["run", "--resume", str(tmp_path / "obj")]) == 2
    with pytest.raises(InvalidConfig, match="student_config only with a named or directory student"):
        SkillListEnv(student=HFStudent(default_dir), student_config={"epochs": 1})


def test_a_student_without_snapshot_round_trips_through_a_directory(default_dir):
    from envgym.error import ResetNeeded
    from students import HFStudent

    # A student with save/load but no in-memory snapshot(): the env must snapshot it through a directory.
    env = SkillListEnv(student=PlainStudent(HFStudent(default_dir)), steps=3, budget=32, n_val=10, n_test=5)
    with pytest.raises(ResetNeeded, match=r"^Expects reset\(\) before snapshot\(\); call env.reset"):
        env.snapshot()
    env.reset(seed=0)
    env.step({"sub_borrow": 32})
    snapshot = env.snapshot()
    assert isinstance(snapshot.student, str)  # a temporary directory, removed with the snapshot
    taught = [ex.question for ex in env.last_training_data]
    first = env.step({"add_carry": 32})
    env.restore(snapshot)
    assert [ex.question for ex in env.last_training_data] == taught  # what the snapshotted step trained on
    again = env.step({"add_carry": 32})
    assert again[1] == first[1] and again[4]["val_accuracy"] == first[4]["val_accuracy"]
    directory = Path(snapshot.student)
    assert any(directory.iterdir())  # the student saved there
    del snapshot
    gc.collect()
    assert not directory.exists()  # nothing left in the temporary directory once the snapshot is gone


def test_reset_and_step_time_their_phases_outside_info():
    env = SkillListEnv(**TINY)
    env.reset(seed=0)
    assert env.timings["generate_seconds"] == env.timings["train_seconds"] == 0.0 < env.timings["eval_seconds"]
    _, _, _, _, info = env.step({"sub_borrow": 16})
    assert set(env.timings) == {"generate_seconds", "train_seconds", "eval_seconds"}
    assert all(seconds > 0 for seconds in env.timings.values())
    assert not set(env.timings) & set(info)  # wall-clock times would make info differ between identical runs


def test_a_student_that_reports_only_its_loss_is_timed_as_zero(default_dir):
    from students import HFStudent

    class LossOnly(PlainStudent):
        def train(self, examples, *, seed):
            return {"loss": self.inner.train(examples, seed=seed)["loss"]}

    env = SkillListEnv(student=LossOnly(HFStudent(default_dir)), **TINY)
    env.reset(seed=0)
    _, _, _, _, info = env.step({"sub_borrow": 16})
    assert env.timings["train_seconds"] == 0.0 and env.timings["eval_seconds"] > 0
    assert isinstance(info["train_loss"], float)


def test_the_observation_a_resumed_reset_returns_is_the_callers_to_change(tmp_path):
    env = SkillListEnv(**TINY)
    env.reset(seed=0)
    env.step({"sub_borrow": 16})
    env.save_checkpoint(tmp_path / "a")
    resumed = SkillListEnv(**TINY)
    observation, info = resumed.reset(options={"checkpoint": tmp_path / "a"})
    expected, expected_info = copy.deepcopy(observation), copy.deepcopy(info)
    observation["accuracy"][:] = -1.0  # a teacher scribbling on its observation and info
    info["val_accuracy"]["sub_borrow"] = -1.0
    info["errors"].clear()
    resumed.save_checkpoint(tmp_path / "b")
    again, again_info = SkillListEnv(**TINY).reset(options={"checkpoint": tmp_path / "b"})
    assert np.array_equal(again["accuracy"], expected["accuracy"])
    assert again_info == expected_info


# -- survivors of the third mutation sample (CONTRIBUTING.md), each killed here ------------------------------------
def test_the_observation_a_step_returns_is_the_callers_to_change(tmp_path):
    env = SkillListEnv(**TINY)
    env.reset(seed=0)
    observation, *_ = env.step({"sub_borrow": 16})
    expected = copy.deepcopy(observation)
    observation["accuracy"][:] = -1.0  # a teacher scribbling on its observation before the checkpoint is written
    env.save_checkpoint(tmp_path / "a")
    again, _ = SkillListEnv(**TINY).reset(options={"checkpoint": tmp_path / "a"})
    assert np.array_equal(again["accuracy"], expected["accuracy"])


def test_an_unknown_reset_option_is_named_with_a_suggestion():
    env = SkillListEnv(**TINY)
    with pytest.raises(UnknownName, match=r"reset option 'checkpont'.*Did you mean 'checkpoint'"):
        env.reset(options={"checkpont": "somewhere"})


class _DropsAnAnswer(PlainStudent):
    def answer(self, questions):
        return self.inner.answer(questions)[:-1]


def test_a_student_that_returns_too_few_answers_is_refused_by_name():
    from students.factory import make_student

    message = r"_DropsAnAnswer.answer to return one answer per question \(40\); actual 39"
    with pytest.raises(InvalidConfig, match=message):
        SkillListEnv(**TINY, student=_DropsAnAnswer(make_student("default"))).reset(seed=0)


def test_a_numeric_action_of_strings_is_refused_naming_its_dtype():
    from envgym.plans import validate_plan

    skills = [f"s{i}" for i in range(8)]
    with pytest.raises(InvalidPlan, match=r"dtype <U1"):
        validate_plan(np.array(["1"] * 8), skills, ["counts"], allowed=16)
