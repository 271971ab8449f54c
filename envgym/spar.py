"""``envgym spar``: SPaR on the ifeval-like task with the default student, as an ordinary resumable episode.

The actor is the default student after a short SFT warm-up on the task (``students.instruction_student``; built
once and cached). The episode is ``envgym/InstructionFollowing-v0`` with that student; each step is one SPaR
iteration of the :class:`~agents.spar.SparTeacher`, whose preference plan the environment referees and trains on
with DPO. The run directory holds everything ``envgym run`` writes, the teacher's ``trees.jsonl``,
``pairs.jsonl`` and ``refiner_data.jsonl``, and in ``report.json`` the held-out constraint-satisfaction rates
before and after, at the instruction level (the share of a prompt's checks passed, the environment's score) and
at the prompt level (every check passed).

Example:
    >>> from envgym.spar import run_spar
    >>> from envgym.spar_config import SparConfig
    >>> report = run_spar(SparConfig(prompts=28), "runs/spar")  # doctest: +SKIP
    >>> report["constraint_satisfaction"]["prompt_level"]  # doctest: +SKIP
    {'before': 0.31, 'after': 0.36}
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from agents.spar import SparTeacher
from agents.tree_search import TreeSearchConfig
from envgym.files import dumps, read_json, write_text_atomic
from envgym.runner import run_episode
from envgym.spar_config import SparConfig
from students.hf_student import HFStudent
from students.instruction_student import INSTRUCTION_MAX_NEW_TOKENS, InstructionStudentConfig, instruction_student_dir

ENV_ID = "envgym/InstructionFollowing-v0"


def run_spar(
    config: SparConfig,
    out_dir: str | Path,
    *,
    search: TreeSearchConfig | None = None,
    warmup: InstructionStudentConfig | None = None,
    student_config: Mapping[str, Any] | None = None,
    llm: Mapping[str, Any] | None = None,
    resume: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Run (or with ``resume`` continue) a SPaR run in ``out_dir``; returns its report."""
    actor = instruction_student_dir(warmup)
    student_fields = {"max_new_tokens": INSTRUCTION_MAX_NEW_TOKENS, **dict(student_config or {})}
    env = gym.make(
        ENV_ID,
        student=str(actor),
        student_config=student_fields,
        steps=config.iterations,
        budget=config.pair_budget,
        n_val=config.n_eval,
        n_test=config.n_eval,
    )
    teacher = SparTeacher(
        prompts=config.prompts,
        samples=config.samples,
        temperature=config.temperature,
        pairs=config.pairs,
        roots=config.roots,
        search=search,
        judge=config.judge,
        llm=llm if config.judge == "llm" else None,
        out_dir=out_dir,
        seed=config.seed,
    )
    try:
        report = run_episode(
            env,
            teacher,
            out_dir,
            seed=config.seed,
            teacher_name=f"spar-{config.pairs}",
            resume=resume,
            progress=progress,
        )
        base = env.unwrapped
        test = base.splits.all_questions("test")
        questions = [example.question for example in test]
        start = HFStudent(actor, base.student.config)
        before = _prompt_level(base.task, questions, start.answer(questions))
        start.close()
        after = _prompt_level(base.task, questions, base.student.answer(questions))
    finally:
        env.close()
    report["constraint_satisfaction"] = {
        "instruction_level": {
            "before": report["test_accuracy"]["before"],
            "after": report["test_accuracy"]["after"],
        },
        "prompt_level": {"before": before, "after": after},
        "test_prompts": len(test),
    }
    report["spar"] = {
        "config": config.to_dict(),
        "search": (search or TreeSearchConfig()).to_dict(),
        "warmup": (warmup or InstructionStudentConfig()).__dict__,
        "actor": str(actor),
    }
    path = Path(out_dir) / "report.json"
    saved = read_json(path, "Run report")
    write_text_atomic(path, dumps({**saved, **report}, indent=2) + "\n")
    return report


def _prompt_level(task: Any, questions: list[str], answers: list[str]) -> float:
    """The share of prompts whose answer passes every check (IFEval's prompt-level strict accuracy)."""
    return float(np.mean([task.all_passed(q, a) for q, a in zip(questions, answers, strict=True)]))
