"""`--log tensorboard,wandb`: per-step scalars through the trackers' own writers, read back with their readers."""

from __future__ import annotations

import json

import pytest
from conftest import SMALL

from envgym.cli import main


def _scalars(directory):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(directory))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


@pytest.mark.slow
def test_tensorboard_scalars_match_steps_jsonl(tmp_path):
    out = tmp_path / "run"
    flags = ["--teacher", "uniform", "--steps", "2", "--budget", "32", "--n-val", str(SMALL["n_val"])]
    flags += ["--n-test", str(SMALL["n_test"]), "--out", str(out), "--log", "tensorboard"]
    assert main(["run", *flags]) == 0
    rows = [json.loads(line) for line in (out / "steps.jsonl").read_text().splitlines()]
    scalars = _scalars(out / "tensorboard")
    assert [step for step, _ in scalars["reward"]] == [1, 2]
    assert [value for _, value in scalars["reward"]] == pytest.approx([row["reward"] for row in rows], abs=1e-6)
    assert scalars["val_accuracy/sub_borrow"][-1][1] == pytest.approx(rows[-1]["val_accuracy"]["sub_borrow"], abs=1e-6)
    assert {"train/loss", "examples/used", "seconds/train", "val_accuracy/mean"} <= set(scalars)


def test_an_unknown_logger_is_refused_before_the_run(tmp_path, capsys):
    assert main(["run", "--log", "tensorbord", "--out", str(tmp_path / "x")]) == 2
    assert "Did you mean 'tensorboard'" in capsys.readouterr().out
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_wandb_logs_offline_into_the_run_directory(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    out = tmp_path / "run"
    flags = ["--teacher", "uniform", "--steps", "1", "--budget", "16", "--n-val", "10", "--n-test", "10"]
    assert main(["run", *flags, "--out", str(out), "--log", "wandb"]) == 0
    runs = list((out / "wandb").rglob("*.wandb"))
    assert runs, "an offline run file in <run>/wandb"
    assert (out / "wandb" / "envgym_run_id").read_text().strip()


@pytest.mark.slow
def test_a_resumed_run_continues_the_same_tensorboard_curves(tmp_path):
    import gymnasium as gym

    import envgym
    from agents import UniformTeacher
    from envgym.error import TeacherError

    class FailsAtStep2(UniformTeacher):
        def act(self, observation, info):
            if info["step"] == 1:
                raise RuntimeError("boom")
            return super().act(observation, info)

    out = tmp_path / "run"

    def make():
        return gym.make("envgym/SkillList-v0", **SMALL, steps=2, budget=16)

    with pytest.raises(TeacherError):
        envgym.run_episode(make(), FailsAtStep2(), out, progress=False, log=["tensorboard"])
    envgym.run_episode(make(), UniformTeacher(), out, resume=True, progress=False, log=["tensorboard"])
    rows = [json.loads(line) for line in (out / "steps.jsonl").read_text().splitlines()]
    rewards = _scalars(out / "tensorboard")["reward"]
    assert [step for step, _ in rewards] == [1, 2]
    assert [value for _, value in rewards] == pytest.approx([row["reward"] for row in rows], abs=1e-6)


@pytest.mark.slow
def test_bench_episodes_write_their_own_tensorboard_files(tmp_path, capsys):
    out = tmp_path / "bench"
    args = ["bench", "--teachers", "uniform", "--seeds", "0-1", "--steps", "1", "--budget", "16", "--jobs", "2"]
    assert main([*args, "--n-val", "5", "--n-test", "5", "--log", "tensorboard", "--out", str(out)]) == 0
    for seed in (0, 1):
        rows = [json.loads(line) for line in (out / "uniform" / f"seed{seed}" / "steps.jsonl").read_text().splitlines()]
        rewards = _scalars(out / "uniform" / f"seed{seed}" / "tensorboard")["reward"]
        assert [value for _, value in rewards] == pytest.approx([rows[0]["reward"]], abs=1e-6)
    assert main([*args, "--log", "tensorbord", "--out", str(tmp_path / "bad")]) == 2
    assert "Did you mean 'tensorboard'" in capsys.readouterr().out
