"""Students: the models a teacher improves, their training and batched generation."""

from students.base import InputCheckingStudent, PreferenceStudent, SnapshotStudent, Student
from students.default_student import DefaultStudentConfig, build_default_student, default_student_dir
from students.gemma import gemma_student_dir
from students.hf_student import HFStudent
from students.hf_student_config import HFStudentConfig

__all__ = [
    "DefaultStudentConfig",
    "HFStudent",
    "HFStudentConfig",
    "InputCheckingStudent",
    "PreferenceStudent",
    "SnapshotStudent",
    "Student",
    "build_default_student",
    "default_student_dir",
    "gemma_student_dir",
]
