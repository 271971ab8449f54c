"""Configuration of :class:`envgym.SkillListEnv`."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from skills.errors import did_you_mean

MODES = ("continual", "retrain")


@dataclass
class SkillListConfig:
    """Everything that defines a skill-list teaching episode (``gym.make`` keyword arguments)."""

    task: Any = field(
        default="arithmetic",
        metadata={"help": "Task name ('arithmetic', 'rg:chain_sum,gcd', ...) or a Task object."},
    )
    student: Any = field(
        default="default",
        metadata={"help": "'default' (the built-in tiny Llama), a Hugging Face model directory, or a Student."},
    )
    student_config: Any = field(
        default=None,
        metadata={"help": "HFStudentConfig or dict of its fields, for a model-directory student."},
    )
    steps: int = field(default=5, metadata={"help": "Teaching steps per episode."})
    budget: int = field(default=1024, metadata={"help": "Most training examples a teacher may spend per step."})
    total_budget: int | None = field(
        default=None, metadata={"help": "Examples for the whole episode; default steps * budget."}
    )
    n_val: int = field(default=200, metadata={"help": "Validation questions per skill (teacher feedback)."})
    n_test: int = field(default=400, metadata={"help": "Test questions per skill (final report only)."})
    split_seed: int = field(
        default=1234,
        metadata={"help": "Fixes which held-out questions form val/test, independent of the episode seed."},
    )
    heldout_fraction: float = field(
        default=0.3,
        metadata={"help": "Share of the question space reserved for evaluation, never trained on."},
    )
    mode: str = field(
        default="continual",
        metadata={
            "help": "'continual': train the current student on each step's data. 'retrain': DataEnvGym-style, "
            "reset to the base student and train on all data so far."
        },
    )
    max_errors: int = field(
        default=64, metadata={"help": "Most validation errors reported in info['errors'] per step."}
    )
    seed: int | None = field(
        default=None, metadata={"help": "Episode seed used when reset() gets none (data and training order)."}
    )

    def __post_init__(self) -> None:
        for name in ("steps", "budget", "n_val", "n_test"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"Expects {name} to be an integer >= 1; actual {value!r}.")
        if self.total_budget is None:
            self.total_budget = self.steps * self.budget
        if self.total_budget < 1:
            raise ValueError(f"Expects total_budget >= 1; actual {self.total_budget}.")
        if self.mode not in MODES:
            raise ValueError(f"Expects mode to be one of {MODES}; actual {self.mode!r}.")
        if self.max_errors < 0:
            raise ValueError(f"Expects max_errors >= 0; actual {self.max_errors}.")

    @classmethod
    def from_kwargs(cls, kwargs: dict[str, Any]) -> SkillListConfig:
        """Like ``SkillListConfig(**kwargs)`` but an unknown keyword gets a did-you-mean error."""
        known = [f.name for f in fields(cls)]
        for name in kwargs:
            if name not in known:
                raise ValueError(
                    f"Unknown SkillList-v0 argument {name!r}.{did_you_mean(name, known)} "
                    f"Expects one of: {', '.join(known)}."
                )
        return cls(**kwargs)
