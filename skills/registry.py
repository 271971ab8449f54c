"""Tasks registered by name, e.g. ``make_task("arithmetic")``, ``make_task("code")``, ``make_task("rg:chain_sum,gcd")``,
``make_task("math:path/to/problems.jsonl")`` (GSM8K- or MATH-format word problems) or
``make_task("code:path/to/problems.jsonl")`` (MBPP- or LiveCodeBench-format programming problems)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from skills.errors import unknown_name_error
from skills.task import Task

_TASKS: dict[str, Callable[..., Task]] = {}


def register_task(name: str, factory: Callable[..., Task]) -> None:
    _TASKS[name] = factory


def task_names() -> list[str]:
    return sorted(_TASKS)


def make_task(spec: str | Task, **kwargs: Any) -> Task:
    """Build a task from its registered name; ``rg:<d1>,<d2>`` makes a reasoning-gym task of those datasets,
    ``math:<path>`` a word-problem task of a local JSONL file (:mod:`skills.math_word`) and ``code:<path>`` a
    programming task of one (:mod:`skills.code_files`)."""
    if not isinstance(spec, str):
        return spec
    if spec.startswith("code:"):
        from skills.code_files import CodeFileTask

        return CodeFileTask(spec[len("code:") :], **kwargs)
    if spec.startswith("math:"):
        from skills.math_word import MathWordTask

        return MathWordTask(spec[len("math:") :], **kwargs)
    if spec.startswith("rg:"):
        from skills.reasoning_gym_task import ReasoningGymTask

        return ReasoningGymTask([name for name in spec[3:].split(",") if name], **kwargs)
    if spec not in _TASKS:
        raise unknown_name_error(
            "task", spec, [*_TASKS, "rg:<dataset>[,<dataset>...]", "math:<file.jsonl>", "code:<file.jsonl>"]
        )
    return _TASKS[spec](**kwargs)


def _register_builtins() -> None:
    from skills.arithmetic import ArithmeticTask
    from skills.code import CodeTask
    from skills.instructions import InstructionTask

    register_task("arithmetic", ArithmeticTask)
    register_task("code", CodeTask)
    register_task("ifeval-like", InstructionTask)


_register_builtins()
