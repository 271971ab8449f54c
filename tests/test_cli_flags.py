"""`envgym run` flags come from the config dataclasses: every field is settable, --config reloads a run's
config, and a resumed run refuses flags that contradict it."""

from __future__ import annotations

import dataclasses
import json

import pytest

from envgym.cli import _ENV_SKIP, build_parser, main
from envgym.skill_list_config import SkillListConfig
from students.hf_student_config import HFStudentConfig

SMALL = ["--steps", "1", "--budget", "16", "--n-val", "5", "--n-test", "5"]


def _options(command: str) -> set[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    return {option for action in sub._actions for option in action.option_strings}


def test_every_config_field_is_a_flag_of_run_and_bench():
    env_fields = [f.name for f in dataclasses.fields(SkillListConfig) if f.name not in _ENV_SKIP]
    env_flags = {"--" + name.replace("_", "-") for name in env_fields}
    student_flags = {"--student-" + f.name.replace("_", "-") for f in dataclasses.fields(HFStudentConfig)}
    for command in ("run", "bench"):
        assert env_flags | student_flags <= _options(command)
    args = build_parser().parse_args(["run", "--student-lora", "--student-lora-target-modules", "q_proj,v_proj"])
    assert args.student_lora is True and args.student_lora_target_modules == ["q_proj", "v_proj"]


@pytest.mark.slow
def test_student_flags_reach_the_run_config_and_config_files_reload_it(tmp_path):
    first = tmp_path / "first"
    flags = [*SMALL, "--student-learning-rate", "0.002", "--student-epochs", "1", "--no-accept-unverifiable"]
    assert main(["run", "--teacher", "uniform", *flags, "--out", str(first)]) == 0
    saved = json.loads((first / "config.json").read_text())
    assert saved["env_kwargs"]["student_config"] == {"learning_rate": 0.002, "epochs": 1}
    assert saved["env_kwargs"]["n_val"] == 5 and saved["env_kwargs"]["accept_unverifiable"] is False

    second = tmp_path / "second"
    assert main(["run", "--config", str(first / "config.json"), "--seed", "4", "--out", str(second)]) == 0
    again = json.loads((second / "config.json").read_text())
    assert again["env_kwargs"] == saved["env_kwargs"] and again["teacher"] == "uniform" and again["seed"] == 4


def test_resume_refuses_contradicting_student_flags_and_bad_values_are_one_line_errors(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "--teacher", "uniform", *SMALL, "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["run", "--resume", str(out), "--student-epochs", "3", "--n-val", "5"]) == 2
    text = capsys.readouterr().out
    assert "--student-epochs 3 (the run has the default)" in text and "--n-val" not in text
    assert main(["run", *SMALL, "--student-lr-schedule", "cosine", "--out", str(tmp_path / "bad")]) == 2
    text = capsys.readouterr().out
    assert "lr_schedule" in text and "Traceback" not in text
    assert not (tmp_path / "bad").exists()
    assert main(["run", "--config", str(tmp_path / "missing.json"), "--out", str(tmp_path / "x")]) == 2
    assert "Config file" in capsys.readouterr().out
