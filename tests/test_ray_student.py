"""Students on Ray actors, through a real local Ray: the same numbers as the local student, a clear error when the
actor dies, and a run that resumes from its checkpoint with a new actor."""

from __future__ import annotations

import json
import os
import signal

import gymnasium as gym
import numpy as np
import pytest
from conftest import SMALL

import envgym
from agents import UniformTeacher
from envgym.error import ResetNeeded, StudentLost
from skills.arithmetic import ArithmeticTask
from students import HFStudent, HFStudentConfig, default_student_dir

RAY = {"placement": "ray", "ray_num_cpus": 1, "num_threads": 1}
EPISODE = {**SMALL, "steps": 2, "budget": 48}


def test_without_ray_running_the_error_says_what_to_do():
    import ray

    if ray.is_initialized():
        pytest.skip("Ray is running in this process")
    from envgym.error import InvalidConfig

    with pytest.raises(InvalidConfig, match=r"ray.init\(\)"):
        gym.make("envgym/SkillList-v0", **EPISODE, student_config=RAY)


@pytest.fixture(scope="module")
def ray_local(tmp_path_factory):
    ray = pytest.importorskip("ray")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        _temp_dir=str(tmp_path_factory.mktemp("ray")),
        runtime_env={"env_vars": {"ENVGYM_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}},
    )
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_student_equals_the_local_student(ray_local):
    from students.ray_student import RayStudent

    examples = ArithmeticTask().generate("add_carry", 64, np.random.default_rng(0))
    questions = [ex.question for ex in ArithmeticTask().generate("add_carry", 50, np.random.default_rng(1))]
    local = HFStudent(default_student_dir(), HFStudentConfig(num_threads=1))
    remote = RayStudent(default_student_dir(), HFStudentConfig(**RAY))
    try:
        assert remote.actor_pid() != os.getpid()
        assert remote.num_parameters() == local.num_parameters()
        assert remote.train(examples, seed=3)["loss"] == pytest.approx(local.train(examples, seed=3)["loss"], abs=1e-7)
        assert remote.answer(questions) == local.answer(questions)
        snapshot = remote.snapshot()
        remote.train(examples, seed=4)
        remote.restore(snapshot)
        assert remote.answer(questions) == local.answer(questions)
        assert remote.check_inputs(["１+1="]) == local.check_inputs(["１+1="])
    finally:
        remote.close()
    with pytest.raises(ResetNeeded, match="after close"):
        remote.answer(["1+1="])


@pytest.mark.slow
def test_an_env_with_a_ray_student_reaches_the_local_numbers(ray_local, tmp_path):
    reports = {}
    for name, student_config in (("local", {"num_threads": 1}), ("ray", RAY)):
        env = gym.make("envgym/SkillList-v0", **EPISODE, student_config=student_config)
        reports[name] = envgym.run_episode(env, UniformTeacher(), tmp_path / name, seed=0, progress=False)
        env.close()
    assert reports["ray"]["test_accuracy"] == reports["local"]["test_accuracy"]


@pytest.mark.slow
def test_an_actor_killed_mid_episode_is_a_clear_error_and_the_run_resumes_to_the_same_numbers(ray_local, tmp_path):
    class KillsTheStudentAtStep2(UniformTeacher):
        def __init__(self, env):
            super().__init__()
            self.env = env

        def act(self, observation, info):
            if info["step"] == 1:
                os.kill(self.env.unwrapped.student.actor_pid(), signal.SIGKILL)
            return super().act(observation, info)

    env = gym.make("envgym/SkillList-v0", **EPISODE, student_config=RAY)
    with pytest.raises(StudentLost, match="resume the run from its last checkpoint"):
        envgym.run_episode(env, KillsTheStudentAtStep2(env), tmp_path / "killed", seed=0, progress=False)
    assert len((tmp_path / "killed" / "steps.jsonl").read_text().splitlines()) == 1  # step 1 kept

    resumed_env = gym.make("envgym/SkillList-v0", **EPISODE, student_config=RAY)
    resumed = envgym.run_episode(
        resumed_env, UniformTeacher(), tmp_path / "killed", seed=0, resume=True, progress=False
    )
    whole_env = gym.make("envgym/SkillList-v0", **EPISODE, student_config=RAY)
    whole = envgym.run_episode(whole_env, UniformTeacher(), tmp_path / "whole", seed=0, progress=False)
    assert resumed["test_accuracy"] == whole["test_accuracy"]
    rows = [json.loads(line) for line in (tmp_path / "killed" / "steps.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [1, 2]
    for made in (resumed_env, whole_env):
        made.close()


@pytest.mark.slow
def test_envgym_run_places_the_student_on_ray(ray_local, tmp_path):
    from envgym.cli import main

    out = tmp_path / "cli"
    flags = ["--steps", "1", "--budget", "16", "--n-val", "10", "--n-test", "10", "--out", str(out)]
    assert main(["run", "--teacher", "uniform", "--student-placement", "ray", *flags]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["env_kwargs"]["student_config"]["placement"] == "ray"
    assert main(["run", "--resume", str(out)]) == 0  # a finished run: nothing left, and no error
