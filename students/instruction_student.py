"""The instruction-following actor: the default student after a short SFT warm-up on the ``ifeval-like`` task.

SPaR refines an actor's *failing* responses, so its actor must already half-follow instructions: a model that
answers nothing but arithmetic gives no response worth refining, and one that follows every instruction gives no
failure. The default student knows only arithmetic, so SPaR here starts from a warm-up of it: SFT on a few
canonical answers per constraint type (training questions only: the held-out share of the task's question space is
never drawn). Built deterministically from its config on first use and cached under ``$ENVGYM_HOME/students``,
like any non-shipped default student.

Example:
    >>> from students.instruction_student import InstructionStudentConfig, instruction_student_dir
    >>> path = instruction_student_dir(InstructionStudentConfig(examples_per_skill=20, epochs=1))  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from transformers.utils import logging as hf_logging

from skills.errors import InvalidConfig, config_from_dict
from skills.instructions import InstructionTask
from skills.splits import TaskSplits, TrainingPool
from skills.storage import build_dir_once
from students.default_student import envgym_home
from students.hf_student import HFStudent
from students.hf_student_config import HFStudentConfig

BUILD_FILE = "envgym_instruction_build.json"
# Measured on 2 cores (default seed), held-out prompt-level rate (all checks passed) after the warm-up:
# - all 14 types, 200 per type x 3 epochs (132 steps): 0.00; 1,000 x 4 (875 steps): 0.00 (the format learned, the
#   copying of the content not: every answer had other words);
# - all 14 types, 2,500 x 3 (~1,640 steps): 0.68 (instruction level 0.83): room to improve, for
#   `benchmarks/spar.py --warmup-examples-per-skill 2500`;
# - all 14 types, 3,000 x 3 (~2,000 steps): 0.92 (instruction level 0.95): the default;
# - 7 types (WARMUP_HALF), 6,000 x 3: 0.40-0.67 on those, 0.00 on the other 7, but fragile: 10 SFT steps on 327
#   *canonical* answers at lr 3e-5 took it from 0.57 to 0.38 (instruction level; duplicated words), DPO likewise.
WARMUP_HALF = ("lower", "nocomma", "quote", "end", "has", "max", "json")
WARMUP_SKILLS = tuple(spec.name for spec in InstructionTask().skills)
# Answers of the ifeval-like task are at most 44 characters; one token each, plus the end token.
INSTRUCTION_MAX_NEW_TOKENS = 48


@dataclass(frozen=True)
class InstructionStudentConfig:
    """The warm-up that turns the default student into an instruction-following actor."""

    skills: tuple[str, ...] = field(
        default=WARMUP_SKILLS,
        metadata={"help": "The constraint types the warm-up teaches (comma-separated); the others are left to SPaR."},
    )
    examples_per_skill: int = field(
        default=3000,
        metadata={
            "help": "Canonical training answers per warm-up constraint type (each prompt has 1-3 constraints, all "
            "of warm-up types): with 3 epochs ~2,000 steps at batch 64, enough to learn to copy the content."
        },
    )
    epochs: int = field(default=3, metadata={"help": "Passes over the warm-up data."})
    learning_rate: float = field(default=1e-3, metadata={"help": "Peak learning rate of the warm-up (full FT)."})
    seed: int = field(default=0, metadata={"help": "Seeds the warm-up data and its order."})

    def __post_init__(self) -> None:
        names = self.skills.split(",") if isinstance(self.skills, str) else self.skills
        object.__setattr__(self, "skills", tuple(name for name in names if name))
        InstructionTask(skills=self.skills)  # unknown names get the task's did-you-mean
        for name in ("examples_per_skill", "epochs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidConfig(f"Expects InstructionStudentConfig.{name} >= 1; actual {value!r}.")
        if not isinstance(self.learning_rate, (int, float)) or not self.learning_rate > 0:
            raise InvalidConfig(f"Expects InstructionStudentConfig.learning_rate > 0; actual {self.learning_rate!r}.")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> InstructionStudentConfig:
        return config_from_dict(cls, values, "InstructionStudentConfig field")

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


def instruction_student_config(**overrides: Any) -> HFStudentConfig:
    """The :class:`HFStudentConfig` the actor answers with: room for the task's longest answer."""
    return HFStudentConfig(**{"max_new_tokens": INSTRUCTION_MAX_NEW_TOKENS, **overrides})


def build_instruction_student(config: InstructionStudentConfig, out_dir: str | Path) -> Path:
    """Warm the default student up on ``config.examples_per_skill`` training answers per skill; save to ``out_dir``."""
    from students.default_student import default_student_dir

    task = InstructionTask(skills=config.skills)
    # Only the reservation matters here (training data never has a reserved key); the split sizes do not.
    pool = TrainingPool(TaskSplits.build(task, n_val=1, n_test=1, split_seed=0))
    rng = np.random.default_rng([config.seed, 11])
    examples = [example for skill in task.skills for example in pool.sample(skill.name, config.examples_per_skill, rng)]
    student = HFStudent(
        default_student_dir(),
        instruction_student_config(learning_rate=config.learning_rate, epochs=config.epochs),
    )
    stats = student.train(examples, seed=config.seed)
    out = Path(out_dir)
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # "Writing model shards" is noise inside `envgym spar`'s status line
    try:
        student.export(out)
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    record = {"config": asdict(config), "examples": len(examples), "train_loss": stats["loss"]}
    (out / BUILD_FILE).write_text(json.dumps(record, indent=2) + "\n")
    return out


def instruction_student_dir(config: InstructionStudentConfig | None = None) -> Path:
    """Directory of the warmed-up actor for ``config``, built now if it is not cached (about a minute on 2 cores)."""
    config = config or InstructionStudentConfig()
    target = envgym_home() / "students" / f"instruction-{config.fingerprint()}"
    return build_dir_once(
        target,
        lambda path: (path / BUILD_FILE).is_file(),
        lambda workdir: build_instruction_student(config, workdir / "student"),
    )
