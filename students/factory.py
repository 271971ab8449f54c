"""Build a student from what a config or the command line names: ``"default"``, ``"gemma-3-270m"``, a Hugging
Face model directory, or a ready :class:`~students.base.Student` object."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from skills.errors import InvalidConfig
from students.base import Student

STUDENT_NAMES = ("default", "gemma-3-270m")


def make_student(
    student: Any = "default", student_config: Any = None, defaults: Mapping[str, Any] | None = None
) -> Student:
    """``student``: ``"default"`` (the built-in tiny Llama), ``"gemma-3-270m"`` (optional extra), a model
    directory path, or a Student object (returned as is). ``student_config``: an ``HFStudentConfig``, a dict of its
    fields (unknown ones get a did-you-mean), or None for the defaults. ``defaults``: ``HFStudentConfig`` fields a
    task needs (a task's ``student_defaults``: generation room for long answers), applied under a dict or None
    ``student_config`` (the caller's own fields win) and never to a ready ``HFStudentConfig`` or Student."""
    from students.hf_student import HFStudent
    from students.hf_student_config import HFStudentConfig

    if not isinstance(student, str):
        if student_config is not None:
            raise InvalidConfig(
                "Expects student_config only with a named or directory student; a Student object carries its "
                f"own configuration (given student_config={student_config!r})."
            )
        return student
    if defaults and (student_config is None or isinstance(student_config, dict)):
        student_config = {**defaults, **(student_config or {})}
    if isinstance(student_config, dict):
        student_config = HFStudentConfig.from_dict(student_config)
    elif student_config is not None and not isinstance(student_config, HFStudentConfig):
        raise InvalidConfig(
            f"Expects student_config as an HFStudentConfig or a dict of its fields; actual "
            f"{type(student_config).__name__}."
        )
    if student == "default":
        from students.default_student import default_student_dir

        model_dir = default_student_dir()
    elif student == "gemma-3-270m":
        from students.gemma import gemma_student_dir

        model_dir = gemma_student_dir()
    else:
        model_dir = student
    if student_config is not None and student_config.placement == "ray":
        from students.ray_student import RayStudent

        return RayStudent(model_dir, student_config)
    return HFStudent(model_dir, student_config)
