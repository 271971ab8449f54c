"""Teachers: agents that read the student's observation and plan its training data."""

from agents.base import Teacher, allocate, counts_plan
from agents.baselines import ErrorProportionalTeacher, RandomTeacher, UniformTeacher
from agents.doremi import DoReMiTeacher
from agents.llm2llm import LLM2LLMTeacher
from agents.llm_teacher import LLMTeacher
from agents.odm import ODMTeacher
from agents.oracle import OracleTeacher
from agents.registry import make_teacher, teacher_names
from agents.skill_it import SkillItTeacher
from agents.stat import STATSelTeacher, STATSynTeacher
from agents.targeted import TargetedTeacher
from agents.tscl import TSCLTeacher

__all__ = [
    "DoReMiTeacher",
    "ErrorProportionalTeacher",
    "LLM2LLMTeacher",
    "LLMTeacher",
    "ODMTeacher",
    "OracleTeacher",
    "RandomTeacher",
    "STATSelTeacher",
    "STATSynTeacher",
    "SkillItTeacher",
    "TSCLTeacher",
    "TargetedTeacher",
    "Teacher",
    "UniformTeacher",
    "allocate",
    "counts_plan",
    "make_teacher",
    "teacher_names",
]
