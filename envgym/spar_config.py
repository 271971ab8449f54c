"""Configuration of ``envgym spar`` (its flags are generated from these fields)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from agents.spar import JUDGES, PAIR_SOURCES, ROOTS
from skills.errors import InvalidConfig, config_from_dict, unknown_name_error


@dataclass
class SparConfig:
    """A SPaR run: ``iterations`` rounds of (sample, judge, refine by tree search, DPO) on the ifeval-like task,
    starting from the warmed-up default student (``students.instruction_student``)."""

    iterations: int = field(
        default=1, metadata={"help": "SPaR iterations; the actor of each is the student after the previous one."}
    )
    pairs: str = field(
        default="tree",
        metadata={
            "help": "'tree' (SPaR: a failing sample against its tree-search refinement) or 'independent' (the "
            "paper's baseline: best against worst of the independent samples)."
        },
    )
    roots: str = field(
        default="all",
        metadata={
            "help": "Tree pairs: refine 'all' of a prompt's distinct failing samples, or 'one' drawn at random (SPaR's "
            "released code: at most one pair a prompt)."
        },
    )
    judge: str = field(
        default="programmatic",
        metadata={
            "help": "'programmatic' (the task's constraint checkers; the refiner makes minimal edits) or 'llm' "
            "(judge and refiner behind --teacher-base-url/--teacher-model)."
        },
    )
    prompts: int = field(default=280, metadata={"help": "Training prompts per iteration (skills in turn)."})
    samples: int = field(default=4, metadata={"help": "Actor responses sampled per prompt."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature of the actor."})
    pair_budget: int = field(
        default=1024,
        metadata={"help": "Most pairs trained on per iteration (the environment's budget: one pair, one unit)."},
    )
    n_eval: int = field(
        default=30, metadata={"help": "Held-out prompts per constraint type, for validation and for test each."}
    )
    seed: int = field(default=0, metadata={"help": "Seeds the episode, the prompts, the samples and the search."})

    def __post_init__(self) -> None:
        for name in ("iterations", "prompts", "samples", "pair_budget", "n_eval"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidConfig(f"Expects SparConfig.{name} to be an integer >= 1; actual {value!r}.")
        if self.pairs not in PAIR_SOURCES:
            raise unknown_name_error("pair source (--pairs)", str(self.pairs), PAIR_SOURCES)
        if self.roots not in ROOTS:
            raise unknown_name_error("choice of tree roots (--roots)", str(self.roots), ROOTS)
        if self.judge not in JUDGES:
            raise unknown_name_error("judge (--judge)", str(self.judge), JUDGES)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise InvalidConfig(f"Expects SparConfig.seed to be a whole number >= 0; actual {self.seed!r}.")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SparConfig:
        return config_from_dict(cls, values, "SparConfig field")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
