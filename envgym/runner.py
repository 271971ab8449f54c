"""Run a teaching episode to files, checkpointing after every step so it can be resumed exactly."""

from __future__ import annotations

import json
import platform
import shutil
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from tqdm.auto import tqdm

from agents.base import Teacher
from envgym.report import plot_accuracy, read_steps, write_summary

CHECKPOINT = "checkpoint"
_VERSIONED = ("envgym", "torch", "transformers", "peft", "trl", "gymnasium", "numpy", "ray", "openai")


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


def _restore_observation(space: gym.spaces.Dict, saved: dict[str, Any]) -> dict[str, Any]:
    return {
        key: (np.asarray(saved[key], dtype=sub.dtype) if isinstance(sub, gym.spaces.Box) else int(saved[key]))
        for key, sub in space.spaces.items()
    }


def _mean(values: dict[str, float]) -> float:
    return float(np.mean(list(values.values())))


def _save_checkpoint(out: Path, env: Any, teacher: Teacher, runner_state: dict[str, Any]) -> None:
    """Atomic: a kill at any moment leaves either the previous or the new checkpoint complete."""
    tmp, final, old = out / f"{CHECKPOINT}.tmp", out / CHECKPOINT, out / f"{CHECKPOINT}.old"
    shutil.rmtree(tmp, ignore_errors=True)
    env.save_checkpoint(tmp / "env")
    if hasattr(teacher, "state_dict"):
        runner_state = {**runner_state, "teacher_state": teacher.state_dict()}
    (tmp / "runner.json").write_text(json.dumps(_jsonable(runner_state)))
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def _latest_checkpoint(out: Path) -> Path:
    for name in (CHECKPOINT, f"{CHECKPOINT}.old"):
        if (out / name / "runner.json").is_file():
            return out / name
    raise ValueError(
        f"Expects a run directory with a checkpoint to resume; found none in {str(out)!r}. "
        "Start a new run with: envgym run --out DIR"
    )


def run_episode(
    env: gym.Env,
    teacher: Teacher,
    out_dir: str | Path,
    *,
    seed: int = 0,
    teacher_name: str | None = None,
    resume: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Run ``teacher`` on ``env`` until the episode ends, writing everything to ``out_dir``.

    Per step: a line in ``steps.jsonl``, the exact training data in ``data/step_<k>.jsonl`` and a checkpoint
    (student, optimizer, environment and RNG state). At the end: ``report.json``, ``summary.md`` and
    ``accuracy.png``. With ``resume=True`` it continues from the last completed step and reaches the same
    numbers as an uninterrupted run.

    Example:
        >>> import gymnasium as gym, envgym
        >>> from agents import UniformTeacher
        >>> env = gym.make("envgym/SkillList-v0", steps=2, budget=128)
        >>> report = envgym.run_episode(env, UniformTeacher(), "runs/example", seed=0)
        >>> sorted(report["test_accuracy"])
        ['after', 'before', 'per_skill']
    """
    base = env.unwrapped
    out = Path(out_dir)
    teacher_name = teacher_name or type(teacher).__name__
    steps_path = out / "steps.jsonl"
    if resume:
        checkpoint = _latest_checkpoint(out)
        state = json.loads((checkpoint / "runner.json").read_text())
        # Wrappers from gym.make refuse step() before reset(); the checkpoint then overwrites the reset state.
        env.reset(seed=state["config"]["seed"])
        base.load_checkpoint(checkpoint / "env")
        if "teacher_state" in state and hasattr(teacher, "load_state_dict"):
            teacher.load_state_dict(state["teacher_state"])
        observation = _restore_observation(base.observation_space, state["observation"])
        info = state["info"]
        # Drop log lines of a step whose checkpoint never completed.
        rows = [row for row in read_steps(out) if row["step"] <= base.step_index]
        steps_path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    else:
        if steps_path.exists() or (out / CHECKPOINT).exists():
            raise ValueError(
                f"Expects a new or empty output directory; {str(out)!r} already holds a run. "
                f"Resume it with `envgym run --resume {out}` or choose another --out."
            )
        (out / "data").mkdir(parents=True, exist_ok=True)
        spec = env.spec
        config = {
            "env_id": spec.id if spec else type(base).__name__,
            "env_kwargs": _jsonable(dict(spec.kwargs) if spec else {}),
            "teacher": teacher_name,
            "seed": seed,
        }
        (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        start = time.perf_counter()
        observation, info = env.reset(seed=seed)
        test_before, _ = base.evaluate("test")
        state = {
            "config": config,
            "test_before": test_before,
            "val_accuracy_start": dict(base.accuracy),
            "elapsed": time.perf_counter() - start,
            "examples_used": 0,
        }
        steps_path.write_text("")
        _save_checkpoint(out, base, teacher, {**state, "observation": observation, "info": info})

    bar = tqdm(
        total=base.config.steps,
        initial=base.step_index,
        desc=f"teaching ({teacher_name})",
        disable=not progress,
    )
    while not base.episode_over:
        start = time.perf_counter()
        plan = teacher.act(observation, info)
        observation, reward, _, _, info = env.step(plan)
        step = base.step_index
        with open(out / "data" / f"step_{step}.jsonl", "w") as f:
            for example in base.last_training_data:
                f.write(json.dumps(example.to_dict()) + "\n")
        state["examples_used"] += info["examples_used"]
        row = {
            "step": step,
            "plan": info["plan"],
            "examples_used": info["examples_used"],
            "budget_spent": info["budget_spent"],
            "budget_left": int(base.budget_left),
            "dropped_heldout": info["dropped_heldout"],
            "rejected": info["rejected"],
            "val_accuracy": info["val_accuracy"],
            "missing_skill_profile": dict(zip(base.skills, observation["missing_skill_profile"].tolist(), strict=True)),
            "reward": reward,
            "train_loss": info["train_loss"],
            **base.timings,
        }
        with open(steps_path, "a") as f:
            f.write(json.dumps(_jsonable(row)) + "\n")
        state["elapsed"] += time.perf_counter() - start
        _save_checkpoint(out, base, teacher, {**state, "observation": observation, "info": info})
        bar.update(1)
        bar.set_postfix(val=f"{_mean(info['val_accuracy']):.3f}", reward=f"{reward:+.3f}")
    bar.close()

    start = time.perf_counter()
    test_after, _ = base.evaluate("test")
    state["elapsed"] += time.perf_counter() - start
    report = {
        "env_id": state["config"]["env_id"],
        "env_kwargs": state["config"]["env_kwargs"],
        "teacher": state["config"]["teacher"],
        "seed": state["config"]["seed"],
        "steps": base.step_index,
        "examples_used": state["examples_used"],
        "wall_seconds": state["elapsed"],
        "student_parameters": base.student.num_parameters(),
        "versions": _versions(),
        "val_accuracy_start": state["val_accuracy_start"],
        "val_accuracy_end": dict(base.accuracy),
        "test_accuracy": {
            "before": _mean(state["test_before"]),
            "after": _mean(test_after),
            "per_skill": {
                skill: {"before": state["test_before"][skill], "after": test_after[skill]} for skill in base.skills
            },
        },
    }
    (out / "report.json").write_text(json.dumps(_jsonable(report), indent=2) + "\n")
    write_summary(out, report)
    plot_accuracy(out, report)
    return report
