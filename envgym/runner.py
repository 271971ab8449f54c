"""Run a teaching episode to files, checkpointing after every step so it can be resumed exactly."""

from __future__ import annotations

import json
import platform
import shutil
import time
from collections import Counter
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from tqdm.auto import tqdm

from agents.base import Teacher
from envgym.core import TeachingEnv
from envgym.files import (
    LOCK_FILE,
    MANIFEST,
    acquire_run_lock,
    dumps,
    read_json,
    replace_dir_atomic,
    verify_manifest,
    write_examples_jsonl,
    write_manifest,
    write_text_atomic,
)
from envgym.loggers import LOGGERS, StepLogger, make_loggers
from envgym.report import plot_accuracy, write_summary
from skills.errors import (
    DamagedCheckpoint,
    InvalidConfig,
    InvalidPlan,
    InvalidRunDirectory,
    LLMUnavailable,
    TeacherError,
    unknown_name_error,
)
from skills.llm import LLMClient
from skills.machine import machine_record

CHECKPOINT = "checkpoint"
# Replies of the teacher's and the data engine's LLM, by request: a resumed run replays them instead of paying again.
LLM_CACHE = "llm_cache"
_VERSIONED = ("envgym", "torch", "transformers", "peft", "trl", "gymnasium", "numpy", "ray", "openai")
_RUN_FILES = (
    "config.json",
    "steps.jsonl",
    "data",
    "report.json",
    "summary.md",
    "accuracy.png",
    "skill_tree.png",
    LLM_CACHE,
)


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _mean(values: dict[str, float]) -> float:
    return float(np.mean(list(values.values())))


def check_run_dir(out: str | Path, *, resume: bool) -> Path:
    """Refuse an unusable output directory before anything expensive is loaded.

    A new run needs a directory that can be created and written; a resumed one needs a run (``config.json``).
    Whether a new run's directory already holds a run is checked under the lock (:func:`refuse_existing_run`), so
    a directory another process is writing is reported as locked. Raises :class:`InvalidRunDirectory`."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InvalidRunDirectory(f"Expects --out to be a directory; {str(out)!r} is a file. Choose another path.")
    if resume:
        if not (out / "config.json").is_file():
            raise InvalidRunDirectory(
                f"Expects a run directory with config.json to resume; {str(out)!r} has none. "
                "Start a new run with: envgym run --out DIR"
            )
        return out
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".envgym-write-probe"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise InvalidRunDirectory(
            f"Expects a writable output directory; cannot write to {str(out)!r} ({err.strerror or err}). "
            "Choose another --out."
        ) from None
    return out


def refuse_existing_run(out: Path) -> None:
    """Raise :class:`InvalidRunDirectory` if ``out`` already holds a run (call it holding the run's lock)."""
    if (out / "steps.jsonl").exists() or (out / CHECKPOINT).exists() or (out / "config.json").exists():
        raise InvalidRunDirectory(
            f"Expects a new or empty output directory; {str(out)!r} already holds a run. "
            f"Resume it with `envgym run --resume {out}` or choose another --out."
        )


def remove_unfinished_run(out: Path, created: Path | None = None) -> None:
    """Remove what a new run wrote before its first checkpoint: its files, then ``out`` and its parents up to
    ``created`` (the outermost directory the run made) as far as they are empty."""
    if (out / CHECKPOINT).exists() or (out / f"{CHECKPOINT}.old").exists():
        return
    for name in (*_RUN_FILES, f"{CHECKPOINT}.tmp", ".matplotlib"):
        path = out / name
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists():
            path.unlink()
    if out.is_dir() and not any(p.name != LOCK_FILE for p in out.iterdir()):
        shutil.rmtree(out, ignore_errors=True)
    if created is not None and out.is_relative_to(created):
        for parent in out.parents:
            if not parent.is_relative_to(created) or not parent.is_dir() or any(parent.iterdir()):
                break
            parent.rmdir()


def _save_checkpoint(out: Path, env: Any, teacher: Teacher, runner_state: dict[str, Any]) -> None:
    """Atomic: a kill at any moment leaves either the previous or the new checkpoint complete."""
    tmp = out / f"{CHECKPOINT}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    env.save_checkpoint(tmp / "env")
    if hasattr(teacher, "state_dict"):
        runner_state = {**runner_state, "teacher_state": teacher.state_dict()}
    (tmp / "runner.json").write_text(dumps(runner_state))
    write_manifest(tmp)
    replace_dir_atomic(tmp, out / CHECKPOINT)


def _latest_checkpoint(out: Path) -> Path:
    """The newest complete checkpoint: ``checkpoint/``, or ``checkpoint.old/`` if a kill hit between renames."""
    for name in (CHECKPOINT, f"{CHECKPOINT}.old"):
        if (out / name / MANIFEST).is_file():
            return out / name
    raise InvalidRunDirectory(
        f"Expects a run directory with a checkpoint to resume; found none in {str(out)!r}. "
        "Start a new run with: envgym run --out DIR"
    )


def _damage_hint(out: Path) -> str:
    return (
        " The checkpoint is damaged and was left as it is. Restore that file from a backup or an earlier copy of "
        f"{str(out / CHECKPOINT)!r} if you keep one, or start the run again with a new --out."
    )


def _summed_engine_usage(steps_path: Path) -> dict[str, float]:
    """The LLM data engine's usage over the episode, summed from ``steps.jsonl`` (so a resumed run counts all)."""
    total: Counter[str] = Counter()
    for line in steps_path.read_text().splitlines():
        usage = (json.loads(line).get("data_engine") or {}).get("llm_usage") or {}
        total.update(usage)
    return dict(total)


def _read_logged_steps(out: Path, completed: int) -> list[dict[str, Any]]:
    """``steps.jsonl`` rows of the ``completed`` checkpointed steps. A line after them (even a half-written one)
    belongs to a step whose checkpoint never completed and is dropped; a gap before them is damage."""
    path = out / "steps.jsonl"
    lines = path.read_text().splitlines() if path.is_file() else []
    rows = []
    for number, line in enumerate(lines[:completed], start=1):
        try:
            rows.append(json.loads(line))
        except ValueError as err:
            raise DamagedCheckpoint(f"Run log {str(path)!r} line {number} is damaged ({err}).") from None
    if [row.get("step") for row in rows] != list(range(1, completed + 1)):
        raise DamagedCheckpoint(
            f"Run log {str(path)!r} does not hold steps 1..{completed} of the checkpoint "
            f"(found steps {[row.get('step') for row in rows]}).{_damage_hint(out)}"
        )
    return rows


def run_episode(
    env: gym.Env,
    teacher: Teacher,
    out_dir: str | Path,
    *,
    seed: int = 0,
    teacher_name: str | None = None,
    resume: bool = False,
    progress: bool = True,
    log: Sequence[str] = (),
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
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InvalidConfig(f"Expects a seed that is a whole number >= 0; actual {seed!r}.")
    for name in log:
        if name not in LOGGERS:
            raise unknown_name_error("logger (--log)", name, LOGGERS)
    if not isinstance(getattr(env, "unwrapped", None), TeachingEnv):
        raise InvalidConfig(
            f"Expects an envgym TeachingEnv (e.g. gym.make('envgym/SkillList-v0'), or a subclass of "
            f"envgym.TeachingEnv); actual {type(env).__name__}. The runner relies on its budget, checkpoints and "
            "evaluation; wrap your environment by subclassing TeachingEnv."
        )
    out = check_run_dir(out_dir, resume=resume)
    lock = acquire_run_lock(out)
    try:
        return _run_locked(env, teacher, out, seed, teacher_name or type(teacher).__name__, resume, progress, log)
    except BaseException:
        if not resume:
            remove_unfinished_run(out)
        raise
    finally:
        lock.release()


def _run_locked(
    env: gym.Env,
    teacher: Teacher,
    out: Path,
    seed: int,
    teacher_name: str,
    resume: bool,
    progress: bool,
    log: Sequence[str],
) -> dict[str, Any]:
    base = env.unwrapped
    steps_path = out / "steps.jsonl"
    teacher_llm = getattr(teacher, "client", None)  # an LLM teacher's client: cache, accounting
    teacher_llm = teacher_llm if isinstance(teacher_llm, LLMClient) else None
    if resume:
        checkpoint = _latest_checkpoint(out)
        verify_manifest(checkpoint, _damage_hint(out))
        state = read_json(checkpoint / "runner.json", "Checkpoint file", _damage_hint(out))
        # The env continues from its checkpoint without evaluating again, with the observation and info it had.
        observation, info = env.reset(options={"checkpoint": checkpoint / "env"})
        if "teacher_state" in state and hasattr(teacher, "load_state_dict"):
            teacher.load_state_dict(state["teacher_state"])
        rows = _read_logged_steps(out, base.step_index)
        write_text_atomic(steps_path, "".join(dumps(row) + "\n" for row in rows))
    else:
        refuse_existing_run(out)
        (out / "data").mkdir(parents=True, exist_ok=True)
        # The env's own full configuration, so a run is resumable however the env was built (gym.make or not).
        env_kwargs, objects = base.config_kwargs()
        config = {
            # The id it was made with (InstructionFollowing-v0 is a SkillListEnv with other defaults).
            "env_id": getattr(base.spec, "id", None) or base.env_id or type(base).__name__,
            "env_kwargs": env_kwargs,
            "teacher": teacher_name,
            "seed": seed,
        }
        if teacher_llm is not None:  # the endpoint, so `envgym run --resume` rebuilds the same teacher
            config["teacher_llm"] = teacher_llm.config.to_dict()
        if objects:  # a Task or Student given as a Python object: resumable from Python only
            config["objects"] = objects
        write_text_atomic(out / "config.json", dumps(config, indent=2) + "\n")
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
        _save_checkpoint(out, base, teacher, state)

    if teacher_llm is not None:
        teacher_llm.use_cache_dir(out / LLM_CACHE)
    base.use_cache_dir(out / LLM_CACHE)
    # Lookahead teachers (the oracle) need the environment itself; ordinary teachers only see obs and info.
    attach = getattr(teacher, "attach", None)
    if callable(attach):
        attach(env)
    loggers = make_loggers(
        log, out, config=state["config"], name=f"{teacher_name}-seed{seed}", first_step=base.step_index + 1
    )
    try:
        return _teach(env, teacher, out, teacher_name, progress, state, observation, info, teacher_llm, loggers)
    finally:
        for logger in loggers:
            logger.close()


def _teach(
    env: gym.Env,
    teacher: Teacher,
    out: Path,
    teacher_name: str,
    progress: bool,
    state: dict[str, Any],
    observation: Any,
    info: dict[str, Any],
    teacher_llm: LLMClient | None,
    loggers: Sequence[StepLogger],
) -> dict[str, Any]:
    """The episode's remaining steps, then its report (``_run_locked`` has set up or restored everything)."""
    base = env.unwrapped
    steps_path = out / "steps.jsonl"
    bar = tqdm(
        total=base.config.steps,
        initial=base.step_index,
        desc=f"teaching ({teacher_name})",
        disable=not progress,
    )
    while not base.episode_over:
        start = time.perf_counter()
        done = base.step_index
        resume_hint = (
            f"The run stopped after step {done}; its checkpoint is complete: fix the teacher, then continue with "
            f"`envgym run --resume {out}`."
        )
        llm_before = teacher_llm.usage.to_dict() if teacher_llm is not None else {}
        try:
            plan = teacher.act(observation, info)
        except LLMUnavailable as err:  # the teacher's server, not its code: one line, and the run resumes
            raise LLMUnavailable(
                f"The teacher {teacher_name!r} could not plan step {done + 1}: {err} {resume_hint}"
            ) from None
        except Exception as err:  # the teacher's own code failed, not the library
            raise TeacherError(
                f"The teacher {teacher_name!r} raised {type(err).__name__}: {err} (planning step {done + 1}). "
                + resume_hint
            ) from err
        try:
            observation, reward, _, _, info = env.step(plan)
        except InvalidPlan as err:
            raise type(err)(f"The teacher {teacher_name!r} planned step {done + 1} badly: {err} {resume_hint}") from err
        except LLMUnavailable as err:  # the data engine's server
            raise LLMUnavailable(
                f"The data engine could not make step {done + 1}'s data: {err} {resume_hint}"
            ) from None
        step = base.step_index
        write_examples_jsonl(out / "data" / f"step_{step}.jsonl", base.last_training_data)
        state["examples_used"] += info["examples_used"]
        row = {
            "step": step,
            "plan": info["plan"],
            "examples_used": info["examples_used"],
            "budget_spent": info["budget_spent"],
            "budget_left": int(base.budget_left),
            "dropped_heldout": info["dropped_heldout"],
            "rejected": info["rejected"],
            "rejections": info["rejections"],
            "unverifiable_accepted": info["unverifiable_accepted"],
            "rejected_examples": info["rejected_examples"],
            "val_accuracy": info["val_accuracy"],
            "missing_skill_profile": info["missing_skill_profile"],
            "reward": reward,
            "train_loss": info["train_loss"],
            **base.timings,
        }
        # What an LLM did this step (the data engine's work, the teacher's requests and its decision); a preference
        # plan's DPO loss.
        optional = ("data_engine", "self_consistent_accepted", "preference_loss")
        row.update({key: info[key] for key in optional if key in info})
        if teacher_llm is not None:
            row["teacher_llm"] = teacher_llm.usage.since(llm_before)
        if getattr(teacher, "last_decision", None):
            row["teacher_decision"] = teacher.last_decision
        with open(steps_path, "a") as f:
            f.write(dumps(row) + "\n")
        for logger in loggers:
            logger.log_step(step, row)
        state["elapsed"] += time.perf_counter() - start
        _save_checkpoint(out, base, teacher, state)
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
        # Float results differ across CPUs and thread counts: what this run's numbers were measured on.
        "machine": machine_record(getattr(base.student, "threads", None)),
        "val_accuracy_start": state["val_accuracy_start"],
        "val_accuracy_end": dict(base.accuracy),
        # STAT's missing-skill profile after the last step, and who attributed it.
        "missing_skill_profile": info["missing_skill_profile"],
        "attributor": info.get("attributor"),
        "test_accuracy": {
            "before": _mean(state["test_before"]),
            "after": _mean(test_after),
            "per_skill": {
                skill: {"before": state["test_before"][skill], "after": test_after[skill]} for skill in base.skills
            },
        },
    }
    if hasattr(teacher, "state_dict"):  # e.g. the oracle's extra training, reported rather than hidden
        report["teacher_state"] = teacher.state_dict()
    if teacher_llm is not None:
        report["teacher_llm"] = {**teacher_llm.usage.to_dict(), "invalid_log": teacher_llm.invalid_log}
    engine_usage = _summed_engine_usage(steps_path)
    if engine_usage:
        report["data_engine_llm"] = engine_usage
    write_text_atomic(out / "report.json", dumps(report, indent=2) + "\n")
    write_summary(out, report)
    plot_accuracy(out, report)
    base.write_report_files(out)
    return report
