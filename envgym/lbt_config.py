"""Configuration of ``envgym/LbT-v0`` (learning by teaching): what is taught, who sits the exam, how long it is."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from skills.errors import InvalidConfig, config_from_dict

# The local teacher server's address and model (``envgym serve-teacher``): Gemma-3-270M, greedy.
DEFAULT_EXAM_STUDENTS: tuple[dict[str, Any], ...] = (
    {"base_url": "http://127.0.0.1:8000/v1", "model": "gemma-3-270m", "temperature": 0.0},
)


@dataclass
class LbTConfig:
    """An LbT episode: ``problems`` teaching problems in turn; each step the teacher's rationale and answer for the
    current one is the in-context example of every exam student on ``exam_size`` similar problems, and the reward is
    their exam accuracy."""

    task: Any = field(
        default="ifeval-like",
        metadata={"help": "Task of the teaching problems and exams (a name as in envgym run --task, or a Task)."},
    )
    students: Any = field(
        default=DEFAULT_EXAM_STUDENTS,
        metadata={
            "help": "Exam students: a list of endpoint settings (dicts of LLMClientConfig fields, e.g. one model "
            "at several temperatures) and/or student names or model directories answering in this process."
        },
    )
    problems: int = field(default=8, metadata={"help": "Teaching problems per episode (one per step)."})
    exam_size: int = field(default=9, metadata={"help": "Exam problems per teaching problem (the paper's ~9)."})
    n_val: int = field(
        default=20,
        metadata={"help": "Validation questions per skill: the teaching problems are drawn from them."},
    )
    n_test: int = field(default=20, metadata={"help": "Test questions per skill: reserved, never taught nor examined."})
    split_seed: int = field(default=1234, metadata={"help": "Seeds the held-out validation/test questions."})
    heldout_fraction: float = field(
        default=0.2, metadata={"help": "Share of the task's question space reserved for validation and test."}
    )
    max_problem_chars: int = field(default=512, metadata={"help": "Longest teaching problem (the observation)."})
    max_rationale_chars: int = field(default=2048, metadata={"help": "Longest rationale an action may hold."})
    max_answer_chars: int = field(default=256, metadata={"help": "Longest final answer an action may hold."})
    seed: int = field(default=0, metadata={"help": "Seed of the first reset when none is given."})

    def __post_init__(self) -> None:
        for name in (
            "problems",
            "exam_size",
            "n_val",
            "n_test",
            "max_problem_chars",
            "max_rationale_chars",
            "max_answer_chars",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidConfig(f"Expects LbTConfig.{name} to be an integer >= 1; actual {value!r}.")
        for name in ("split_seed", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidConfig(f"Expects LbTConfig.{name} to be a whole number >= 0; actual {value!r}.")
        if not isinstance(self.heldout_fraction, (int, float)) or not 0 < self.heldout_fraction < 1:
            raise InvalidConfig(f"Expects LbTConfig.heldout_fraction in (0, 1); actual {self.heldout_fraction!r}.")
        if isinstance(self.students, (list, tuple)):
            self.students = tuple(dict(s) if isinstance(s, dict) else s for s in self.students)

    @classmethod
    def from_kwargs(cls, kwargs: dict[str, Any]) -> LbTConfig:
        """Like ``LbTConfig(**kwargs)`` but an unknown keyword gets a did-you-mean error."""
        return config_from_dict(cls, kwargs, "LbT-v0 keyword")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LbTRunConfig:
    """``envgym lbt m1|m2|m3``.

    M1: per teaching problem, ``samples`` teacher solutions scored by LbT on one exam, and the answer picked by each
    selection rule (maj, max, sum, avg) against the teacher's greedy answer.

    M2: the teacher (Gemma-3-270M with LoRA, in this process) samples solutions of training problems, each scored
    ``lbt_weight`` x LbT score + (1 - ``lbt_weight``) x correctness; pairs whose scores differ by more than
    ``pair_gap`` (at most ``max_pairs_per_problem`` per problem) train it with DPO, against the same with correctness
    alone; its accuracy on held-out test problems before and after each.

    M3: an in-context example set of one skill is refined over ``rounds``: the teacher sees the students' failures
    with it, states why and rewrites it; candidates (verified, never a held-out question) are scored by the students
    on a training minibatch and a beam is kept, scored by one student and by all; per round, the best set's
    validation accuracy."""

    task: str = field(default="ifeval-like", metadata={"help": "Task of the teaching problems and exams."})
    problems: int = field(default=8, metadata={"help": "Teaching problems (validation questions, seeded)."})
    samples: int = field(default=4, metadata={"help": "Teacher solutions sampled per teaching problem (N)."})
    temperature: float = field(default=1.0, metadata={"help": "The teacher's sampling temperature."})
    shots: int = field(default=2, metadata={"help": "Worked training examples (gold answers) in the teacher's prompt."})
    exam_size: int = field(default=9, metadata={"help": "Exam problems per teaching problem."})
    exam_temperatures: str = field(
        default="0",
        metadata={
            "help": "Exam students of the student endpoint (--student-base-url, default: the teacher's), one per "
            "temperature (comma-separated, e.g. '0,0.7')."
        },
    )
    local_students: str = field(
        default="",
        metadata={"help": "Students answering in this process too (comma-separated names or model dirs: default)."},
    )
    lbt_weight: float = field(
        default=0.5, metadata={"help": "M2: weight of the LbT score in a solution's score (the rest: correctness)."}
    )
    pair_gap: float = field(default=0.3, metadata={"help": "M2: least score difference of a preference pair."})
    max_pairs_per_problem: int = field(default=8, metadata={"help": "M2: most preference pairs per problem."})
    eval_problems: int = field(
        default=56, metadata={"help": "M2: held-out test problems the teacher is evaluated on (skills in turn)."}
    )
    skill: str = field(
        default="", metadata={"help": "M3: the skill whose in-context examples are refined (default: the first)."}
    )
    examples: int = field(default=4, metadata={"help": "M3: in-context examples in a set."})
    rounds: int = field(default=3, metadata={"help": "M3: refinement rounds."})
    beam: int = field(default=2, metadata={"help": "M3: example sets kept after each round."})
    rewrites: int = field(default=2, metadata={"help": "M3: teacher rewrites per kept set per round."})
    minibatch: int = field(
        default=8, metadata={"help": "M3: training problems per round, for the failures and for scoring each."}
    )
    seed: int = field(default=0, metadata={"help": "Seeds the problems, the exams and the teacher's samples."})

    def __post_init__(self) -> None:
        for name in (
            "problems",
            "samples",
            "shots",
            "exam_size",
            "max_pairs_per_problem",
            "eval_problems",
            "examples",
            "rounds",
            "beam",
            "rewrites",
            "minibatch",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidConfig(f"Expects LbTRunConfig.{name} to be an integer >= 1; actual {value!r}.")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise InvalidConfig(f"Expects LbTRunConfig.seed to be a whole number >= 0; actual {self.seed!r}.")
        for name, low, high in (("temperature", 0.0, math.inf), ("lbt_weight", 0.0, 1.0), ("pair_gap", 0.0, 1.0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
                raise InvalidConfig(f"Expects LbTRunConfig.{name} in [{low}, {high}]; actual {value!r}.")
        self.temperatures()  # refuses a malformed list now, not after the server started

    def temperatures(self) -> list[float]:
        try:
            values = [float(t) for t in str(self.exam_temperatures).split(",") if t.strip()]
        except ValueError:
            values = []
        if not values or any(t < 0 for t in values):
            raise InvalidConfig(
                "Expects exam_temperatures as comma-separated numbers >= 0, e.g. '0' or '0,0.7'; actual "
                f"{self.exam_temperatures!r}."
            )
        return values

    def local(self) -> list[str]:
        return [name.strip() for name in str(self.local_students).split(",") if name.strip()]

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> LbTRunConfig:
        return config_from_dict(cls, values, "LbTRunConfig field")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
