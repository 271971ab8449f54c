"""A run directory is never corrupted: one writer at a time, strict JSON, damaged checkpoints named, bad --out and
flags refused before anything is loaded, and a failing teacher leaves a resumable run."""

import json
import os
import shutil
import subprocess
import sys
import time

import gymnasium as gym
import pytest
from filelock import FileLock

import envgym
from agents import UniformTeacher
from envgym.cli import main
from envgym.error import DamagedCheckpoint, InvalidConfig, RunDirectoryLocked, TeacherError
from envgym.files import LOCK_FILE

RUN = ["run", "--teacher", "uniform", "--steps", "2", "--budget", "32", "--seed", "1"]


def _cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "envgym.cli", *args], capture_output=True, text=True, cwd=cwd, env=os.environ.copy()
    )


def _strict_json(text):
    def refuse(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "done"
    assert main([*RUN, "--out", str(out)]) == 0
    return out


@pytest.mark.slow
def test_a_second_writer_is_refused_while_the_first_runs(tmp_path):
    out = tmp_path / "shared"
    first = subprocess.Popen(
        [sys.executable, "-m", "envgym.cli", *RUN, "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    deadline = time.time() + 120
    while time.time() < deadline and not (out / LOCK_FILE).exists():
        time.sleep(0.02)
    second = _cli("run", "--teacher", "targeted", "--steps", "2", "--budget", "32", "--out", str(out))
    stdout, stderr = first.communicate(timeout=600)
    assert first.returncode == 0, stdout + stderr
    assert second.returncode == 2 and "in use by another envgym process" in second.stdout
    assert "Traceback" not in second.stdout + second.stderr
    steps = [_strict_json(line) for line in (out / "steps.jsonl").read_text().splitlines()]
    assert [s["step"] for s in steps] == [1, 2] and _strict_json((out / "config.json").read_text())[
        "teacher"
    ] == "uniform"


@pytest.mark.slow
def test_a_held_lock_refuses_run_and_resume(tmp_path, finished_run, make_env):
    lock = FileLock(str(finished_run.resolve() / LOCK_FILE))
    with lock:
        with pytest.raises(RunDirectoryLocked):
            envgym.run_episode(make_env(), UniformTeacher(), finished_run, resume=True)
        assert main(["run", "--resume", str(finished_run)]) == 2


def test_steps_log_is_strict_json_with_null_loss_for_an_empty_step(tmp_path):
    class Idle:
        def act(self, observation, info):
            return {}

    import gymnasium as gym

    env = gym.make("envgym/SkillList-v0", steps=1, budget=8, n_val=4, n_test=4)
    envgym.run_episode(env, Idle(), tmp_path / "idle", progress=False)
    (row,) = [_strict_json(line) for line in (tmp_path / "idle" / "steps.jsonl").read_text().splitlines()]
    assert row["train_loss"] is None and row["examples_used"] == 0
    assert {"rejected", "rejections", "rejected_examples", "unverifiable_accepted", "dropped_heldout"} <= set(row)
    _strict_json((tmp_path / "idle" / "report.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize(
    ("relative", "damage"),
    [
        ("checkpoint/env/student/student_weights.safetensors", 100),
        ("checkpoint/env/student/optimizer.pt", 0),
        ("checkpoint/env/env_state.json", 20),
        ("checkpoint/env/accumulated.jsonl", "delete"),
        ("checkpoint/runner.json", 30),
        ("checkpoint/manifest.json", 10),
        ("config.json", 15),
    ],
)
def test_a_damaged_checkpoint_is_named_and_left_untouched(tmp_path, finished_run, capsys, relative, damage):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    path = run / relative
    if damage == "delete":
        path.unlink()
    else:
        path.write_bytes(path.read_bytes()[:damage])
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != LOCK_FILE}
    capsys.readouterr()
    assert main(["run", "--resume", str(run)]) == 2
    out = capsys.readouterr().out
    assert path.name in out and ("damaged" in out or "missing" in out)
    assert "Traceback" not in out
    if relative.startswith("checkpoint/"):
        assert "start the run again" in out
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != LOCK_FILE} == before


@pytest.mark.slow
def test_a_half_written_last_log_line_is_dropped_on_resume(tmp_path, finished_run):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    with open(run / "steps.jsonl", "a") as f:
        f.write('{"step": 3, "plan": {"ki')  # a kill mid-write of a step whose checkpoint never completed
    report = envgym.run_episode(
        _env_for(run), UniformTeacher(), run, seed=1, teacher_name="uniform", resume=True, progress=False
    )
    assert report["steps"] == 2
    assert [_strict_json(line)["step"] for line in (run / "steps.jsonl").read_text().splitlines()] == [1, 2]


def _env_for(run):
    import gymnasium as gym

    config = json.loads((run / "config.json").read_text())
    return gym.make(config["env_id"], **config["env_kwargs"])


@pytest.mark.slow
def test_envgym_report_names_a_damaged_report(tmp_path, finished_run, capsys):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    (run / "report.json").write_text((finished_run / "report.json").read_text()[:40])
    capsys.readouterr()
    assert main(["report", str(run)]) == 2
    out = capsys.readouterr().out
    assert "report.json" in out and "damaged" in out and "--resume" in out
    assert main(["run", "--resume", str(run)]) == 0  # rebuilds it from the final checkpoint
    assert main(["report", str(run)]) == 0


@pytest.mark.slow
def test_resume_refuses_flags_that_conflict_with_the_saved_run(finished_run, capsys):
    capsys.readouterr()
    code = main(["run", "--resume", str(finished_run), "--steps", "10", "--teacher", "targeted", "--seed", "9"])
    out = capsys.readouterr().out
    assert code == 2
    for text in ("--steps 10", "--teacher targeted", "--seed 9", "(the run has 2)", "(the run has 'uniform')"):
        assert text in out
    # Flags equal to the saved ones are not conflicts.
    assert main(["run", "--resume", str(finished_run), "--steps", "2", "--teacher", "uniform", "--seed", "1"]) == 0


@pytest.mark.slow
def test_bad_out_and_seed_are_refused_before_anything_loads(tmp_path):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    # An unknown --env would fail at load time: the --out error coming first shows nothing was loaded.
    for out in (a_file, a_file / "below", "/proc/envgym-cannot-write-here"):
        result = _cli("run", "--env", "envgym/NoSuch-v0", "--out", str(out))
        assert result.returncode == 2, result.stdout + result.stderr
        assert "--out" in result.stdout and "Traceback" not in result.stdout + result.stderr
    result = _cli("run", "--seed", "-1", "--out", str(tmp_path / "neg"))
    assert result.returncode == 2 and "whole number >= 0" in result.stderr
    assert not (tmp_path / "neg").exists()


@pytest.mark.slow
def test_a_run_that_fails_before_its_first_checkpoint_leaves_nothing(tmp_path):
    result = _cli("run", "--task", "rg:leg_counting", "--out", str(tmp_path / "new" / "long"))
    assert result.returncode == 2 and "does not fit the student" in result.stdout
    assert not (tmp_path / "new").exists()  # nor the parent it created
    with pytest.raises(InvalidConfig, match="seed"):
        envgym.run_episode(None, UniformTeacher(), tmp_path / "neg", seed=-1)
    assert not (tmp_path / "neg").exists()
    with pytest.raises(InvalidConfig, match="Expects an envgym TeachingEnv"):
        envgym.run_episode(gym.make("CartPole-v1"), UniformTeacher(), tmp_path / "cartpole")
    assert not (tmp_path / "cartpole").exists()


TEACHER_MODULE = """
from agents import UniformTeacher


class Flaky(UniformTeacher):
    def act(self, observation, info):
        if observation["step"] == 1:
            return {"no_such_skill": 1} if BAD_PLAN else 1 / 0
        return super().act(observation, info)


BAD_PLAN = False
"""


@pytest.mark.slow
def test_a_failing_teacher_is_shown_as_the_teachers_error_and_the_run_resumes(tmp_path):
    (tmp_path / "my_teachers.py").write_text(TEACHER_MODULE)
    out = tmp_path / "run"
    result = _cli(
        "run", "--teacher", "my_teachers:Flaky", "--steps", "2", "--budget", "32", "--out", "run", cwd=tmp_path
    )
    assert result.returncode == 2
    assert "The teacher 'my_teachers:Flaky' raised ZeroDivisionError" in result.stdout
    assert "my_teachers.py" in result.stdout and "1 / 0" in result.stdout  # the teacher's own traceback
    assert "stopped after step 1" in result.stdout and "--resume" in result.stdout
    (tmp_path / "my_teachers.py").write_text(TEACHER_MODULE.replace("1 / 0", "super().act(observation, info)"))
    resumed = _cli("run", "--resume", "run", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert (out / "report.json").is_file()


def test_a_teacher_error_keeps_its_cause_in_process(tmp_path, make_env):
    class Broken:
        def act(self, observation, info):
            raise KeyError("oops")

    with pytest.raises(TeacherError, match="raised KeyError") as caught:
        envgym.run_episode(make_env(steps=1, budget=8), Broken(), tmp_path / "b", progress=False)
    assert isinstance(caught.value.__cause__, KeyError)
    assert (tmp_path / "b" / "checkpoint" / "manifest.json").is_file()  # resumable from step 0


@pytest.mark.slow
def test_an_invalid_plan_in_a_run_says_which_step_and_how_to_resume(tmp_path):
    (tmp_path / "my_teachers.py").write_text(TEACHER_MODULE.replace("BAD_PLAN = False", "BAD_PLAN = True"))
    result = _cli("run", "--teacher", "my_teachers:Flaky", "--steps", "2", "--budget", "32", "--out", "r", cwd=tmp_path)
    assert result.returncode == 2 and "planned step 2 badly" in result.stdout and "no_such_skill" in result.stdout
    assert "Traceback" not in result.stdout


def test_an_internal_bug_is_reported_as_a_bug(monkeypatch, capsys):
    import envgym.cli as cli

    def explode(args):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(cli, "_cmd_list", explode)  # build_parser binds the module's function when main() runs
    assert cli.main(["list"]) == 1
    out = capsys.readouterr().out
    assert "bug in envgym" in out and "ZeroDivisionError" in out


def test_damaged_checkpoint_errors_are_value_errors():
    assert issubclass(DamagedCheckpoint, ValueError) and issubclass(RunDirectoryLocked, RuntimeError)
