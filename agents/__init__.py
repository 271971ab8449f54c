"""Teachers: agents that read the student's observation and plan its training data."""

from agents.base import Teacher, allocate
from agents.baselines import ErrorProportionalTeacher, RandomTeacher, UniformTeacher
from agents.registry import make_teacher, teacher_names
from agents.targeted import TargetedTeacher

__all__ = [
    "ErrorProportionalTeacher",
    "RandomTeacher",
    "TargetedTeacher",
    "Teacher",
    "UniformTeacher",
    "allocate",
    "make_teacher",
    "teacher_names",
]
