"""A student, a teacher import and a plot leave the process as they found it: envs share Ray workers and test
processes, so no process-wide setting may leak (torch threads, sys.path, environment variables)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch

from students import HFStudent, HFStudentConfig, default_student_dir
from students.hf_student import torch_threads


def test_a_student_uses_its_threads_only_while_it_works():
    before = torch.get_num_threads()
    other = 1 if before != 1 else 2
    seen = []
    student = HFStudent(default_student_dir(), HFStudentConfig(num_threads=other))
    original = student.model.generate

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return original(*args, **kwargs)

    student.model.generate = spy
    student.answer(["12+34="])
    assert seen == [other]  # its own count while answering
    assert torch.get_num_threads() == before  # and the process's own count afterwards
    with torch_threads(other):
        assert torch.get_num_threads() == other
    assert torch.get_num_threads() == before


def test_a_module_class_teacher_does_not_leave_the_working_directory_on_sys_path(tmp_path, monkeypatch):
    from agents.registry import make_teacher

    (tmp_path / "my_hygiene_teacher.py").write_text(
        "class T:\n    def act(self, observation, info):\n        return {}\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    teacher = make_teacher("my_hygiene_teacher:T")
    assert type(teacher).__name__ == "T"
    assert str(tmp_path) not in sys.path


@pytest.mark.slow
def test_plotting_does_not_leave_mplconfigdir_in_the_environment(tmp_path):
    code = textwrap.dedent(
        f"""
        import os
        from envgym.report import pyplot
        pyplot({str(tmp_path)!r})
        import matplotlib
        print(matplotlib.get_cachedir())
        print("MPLCONFIGDIR" in os.environ)
        """
    )
    env = {key: value for key, value in os.environ.items() if key != "MPLCONFIGDIR"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    cache_dir, leaked = out.split()
    assert cache_dir == str(tmp_path / ".matplotlib") and leaked == "False"


def test_close_releases_the_student_and_a_closed_student_says_so():
    import gymnasium as gym
    import pytest

    import envgym  # noqa: F401
    from envgym.error import ResetNeeded

    env = gym.make("envgym/SkillList-v0", n_val=5, n_test=5)
    env.reset(seed=0)
    student = env.unwrapped.student
    env.close()
    assert not hasattr(student, "model") and not hasattr(student, "optimizer")
    with pytest.raises(ResetNeeded, match=r"answer\(\) was called after close"):
        student.answer(["1+1="])
    with pytest.raises(ResetNeeded):
        env.step({"add_carry": 1})
