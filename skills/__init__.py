"""Tasks, skills, the skill taxonomy and held-out splits."""

from skills.arithmetic import ArithmeticTask
from skills.code import CodeTask
from skills.code_files import CodeFileTask
from skills.instructions import InstructionTask
from skills.registry import make_task, register_task, task_names
from skills.splits import TaskSplits, TrainingPool
from skills.task import (
    Example,
    PreferencePair,
    Skill,
    Task,
    Verdict,
    Verification,
    skill_names,
    taxonomy,
    verify_example,
)

__all__ = [
    "ArithmeticTask",
    "CodeFileTask",
    "CodeTask",
    "Example",
    "InstructionTask",
    "PreferencePair",
    "Skill",
    "Task",
    "TaskSplits",
    "TrainingPool",
    "Verdict",
    "Verification",
    "make_task",
    "register_task",
    "skill_names",
    "task_names",
    "taxonomy",
    "verify_example",
]
