import json
import os
import signal
import subprocess
import sys

import pytest

import envgym
from agents import UniformTeacher
from envgym.cli import main


def _cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "envgym.cli", *args], capture_output=True, text=True, cwd=cwd, env=os.environ.copy()
    )


def _numbers(run_dir):
    report = json.loads((run_dir / "report.json").read_text())
    steps = [json.loads(line) for line in (run_dir / "steps.jsonl").read_text().splitlines()]
    data = sorted((p.name, p.read_text()) for p in (run_dir / "data").iterdir())
    return report["test_accuracy"], report["examples_used"], [(s["plan"], s["val_accuracy"]) for s in steps], data


@pytest.mark.slow
def test_cli_run_writes_every_artifact_and_report_redraws(tmp_path):
    out = tmp_path / "run"
    result = _cli("run", "--teacher", "uniform", "--steps", "2", "--budget", "64", "--seed", "3", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "mean" in result.stdout and "before" in result.stdout
    report = json.loads((out / "report.json").read_text())
    for key in ("env_id", "teacher", "seed", "examples_used", "wall_seconds", "versions", "test_accuracy"):
        assert key in report
    assert report["env_id"] == "envgym/SkillList-v0" and report["seed"] == 3 and report["examples_used"] == 128
    assert {"torch", "threads", "cpu", "arch", "isa"} <= set(report["machine"])  # what measured these numbers
    assert set(report["test_accuracy"]["per_skill"]["sub_borrow"]) == {"before", "after"}
    steps = [json.loads(line) for line in (out / "steps.jsonl").read_text().splitlines()]
    assert [s["step"] for s in steps] == [1, 2]
    assert {"plan", "examples_used", "val_accuracy", "reward", "train_seconds", "eval_seconds"} <= set(steps[0])
    assert len((out / "data" / "step_1.jsonl").read_text().splitlines()) == 64
    assert (out / "accuracy.png").stat().st_size > 10_000 and (out / "summary.md").is_file()
    (out / "accuracy.png").unlink()
    assert main(["report", str(out)]) == 0 and (out / "accuracy.png").is_file()


_KILLER = """
import os, signal
from pathlib import Path

from agents.targeted import TargetedTeacher


class KillOnceAfterStepOne(TargetedTeacher):
    \"\"\"The targeted teacher, except that the first time it is asked for step 2's plan (step 1 is checkpointed by
    then) it SIGKILLs its own process: a hard kill at a known step boundary, the same one every run.\"\"\"

    def act(self, observation, info):
        marker = Path(__file__).with_name("killed-once")
        if int(observation["step"]) == 1 and not marker.exists():
            marker.touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return super().act(observation, info)
"""


@pytest.mark.slow
def test_resume_after_kill_equals_uninterrupted(tmp_path):
    args = ["run", "--steps", "3", "--budget", "96", "--seed", "1"]
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    assert _cli(*args, "--teacher", "targeted", "--out", str(straight)).returncode == 0

    (tmp_path / "killer.py").write_text(_KILLER)
    run = _cli(*args, "--teacher", "killer:KillOnceAfterStepOne", "--out", str(killed), cwd=tmp_path)
    assert run.returncode == -signal.SIGKILL and (tmp_path / "killed-once").exists()
    assert not (killed / "report.json").exists()
    assert len((killed / "steps.jsonl").read_text().splitlines()) == 1  # killed right after step 1's checkpoint

    resumed = _cli("run", "--resume", str(killed), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert _numbers(killed) == _numbers(straight)


@pytest.mark.slow
def test_resume_after_teacher_crash_in_process(tmp_path, make_env):
    class CrashingTeacher(UniformTeacher):
        def act(self, observation, info):
            if observation["step"] == 1:
                raise KeyboardInterrupt
            return super().act(observation, info)

    with pytest.raises(KeyboardInterrupt):
        envgym.run_episode(make_env(steps=2, budget=32), CrashingTeacher(), tmp_path / "a", seed=0, progress=False)
    resumed = envgym.run_episode(
        make_env(steps=2, budget=32), UniformTeacher(), tmp_path / "a", seed=0, resume=True, progress=False
    )
    straight = envgym.run_episode(
        make_env(steps=2, budget=32), UniformTeacher(), tmp_path / "b", seed=0, progress=False
    )
    assert resumed["test_accuracy"] == straight["test_accuracy"]
    with pytest.raises(ValueError, match="already holds a run"):
        envgym.run_episode(make_env(steps=2, budget=32), UniformTeacher(), tmp_path / "b", seed=0, progress=False)


@pytest.mark.slow
def test_cli_errors_are_clear_without_tracebacks(tmp_path):
    result = _cli("run", "--teacher", "targetted", "--out", str(tmp_path / "x"))
    assert result.returncode == 2
    assert "Did you mean 'targeted'" in result.stdout and "Traceback" not in result.stdout + result.stderr
    result = _cli("run", "--env", "envgym/SkillLst-v0", "--out", str(tmp_path / "y"))
    assert result.returncode == 2 and "Did you mean 'envgym/SkillList-v0'" in result.stdout
    result = _cli("run", "--resume", str(tmp_path / "nothing"))
    assert result.returncode == 2 and "config.json" in result.stdout
    result = _cli("report", str(tmp_path))
    assert result.returncode == 2 and "report.json" in result.stdout


@pytest.mark.slow
def test_cli_list_shows_envs_teachers_and_skills():
    result = _cli("list")
    assert result.returncode == 0
    for text in ("envgym/SkillList-v0", "targeted", "error-proportional", "arithmetic/sub_borrow", "rg:", "code/loop"):
        assert text in result.stdout
