"""The built-in default student: a ~1M-parameter character-level Llama pre-trained locally on a base curriculum.

No model hub is reachable, so the default student is made here, deterministically from a seed: a
character tokenizer, a tiny Llama, and a base curriculum that covers some skills whole, some only in their easier
difficulty bands and some not at all: every episode starts with skills it knows, skills it knows in part, and
skills it has never seen, and that starting profile is the recipe's, not a build's (within ±0.05 across build
seeds and machines; ``PROFILE_TOLERANCE``). The weights of the
default configuration ship in ``students/weights/default`` (built by ``envgym build-student --ship``;
``--check`` rebuilds and compares); any other configuration is built on first use and cached under ``$ENVGYM_HOME``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from skills.arithmetic import ArithmeticTask
from skills.errors import InvalidConfig, config_from_dict
from skills.machine import machine_record
from skills.splits import TaskSplits, TrainingPool
from skills.storage import build_dir_once
from skills.subskills import difficulty
from students.char_tokenizer import build_char_tokenizer
from students.training import PromptCompletion, format_completion, format_prompt, train_on_pairs

SHIPPED_DIR = Path(__file__).parent / "weights" / "default"
BUILD_FILE = "envgym_build.json"
# How far a rebuild's per-skill test accuracy may be from the recorded one (another CPU's float low bits, another
# build seed): `envgym build-student --check` holds rebuilds to it.
PROFILE_TOLERANCE = 0.05

# The base curriculum: share of pre-training examples per skill, and the difficulty bands it covers. What the
# student starts knowing is decided by *which questions* it saw, not by where training stopped: pre-training runs
# to convergence (cosine decay), so every covered band is learned (~1.0) and every band never seen stays near 0.
# Long training sharpens a band's edge: at 2,000 steps one build seed answered 16% of the unseen 2-carry
# additions, at 3,000 steps 4%. A mid-training checkpoint (the previous default) leaves more room, but its
# part-learned skills landed anywhere between 0.1 and 1.0 from one build seed or CPU to the next
# (benchmarks/default_student_seeds_midtraining.md). The skills left out (add_carry, sub_borrow, mul_1d) and the
# uncovered bands are what a teacher can teach.
SKILL_SHARES = (
    ("add_no_carry", 0.15),
    ("add_3d_carry", 0.30),
    ("sum3", 0.10),
    ("sub_no_borrow", 0.15),
    ("compare", 0.10),
)
# (skill, low, high): the curriculum's examples of ``skill`` have ``low <= task.difficulty(example) <= high``
# (carries here: the SkillTree's bands ``add_3d_carry/carries=1`` and ``sum3/carries=0``).
SKILL_BANDS = (
    ("add_3d_carry", 1.0, 1.0),
    ("sum3", 0.0, 0.0),
)


@dataclass(frozen=True)
class DefaultStudentConfig:
    """Architecture and base curriculum of the built-in student."""

    seed: int = field(default=0, metadata={"help": "Seeds weight init, curriculum data and data order."})
    hidden_size: int = field(default=128, metadata={"help": "Llama hidden size."})
    intermediate_size: int = field(default=512, metadata={"help": "Llama MLP width."})
    num_layers: int = field(default=4, metadata={"help": "Llama decoder layers."})
    num_heads: int = field(default=4, metadata={"help": "Attention heads."})
    skill_shares: tuple[tuple[str, float], ...] = field(
        default=SKILL_SHARES,
        metadata={"help": "(skill, share) pairs: the share of pre-training examples drawn from each skill."},
    )
    skill_bands: tuple[tuple[str, float, float], ...] = field(
        default=SKILL_BANDS,
        metadata={
            "help": "(skill, low, high) triples: the curriculum draws only examples of the skill whose difficulty "
            "(ArithmeticTask.difficulty: carries, borrows, ...) lies in low..high; a skill not named is drawn whole."
        },
    )
    steps: int = field(default=3000, metadata={"help": "Optimizer steps of base pre-training."})
    batch_size: int = field(default=64, metadata={"help": "Pre-training batch size."})
    peak_lr: float = field(default=1e-3, metadata={"help": "Peak learning rate (linear warmup, cosine decay)."})
    final_lr: float = field(
        default=1e-4,
        metadata={"help": "Learning rate at the end of the cosine: low, so covered bands are learned to the end."},
    )
    warmup_steps: int = field(default=100, metadata={"help": "Linear warmup steps."})

    def __post_init__(self) -> None:
        names = {skill.name for skill in ArithmeticTask().skills}
        for pair in self.skill_shares:
            if len(pair) != 2 or pair[0] not in names or not isinstance(pair[1], (int, float)) or pair[1] < 0:
                raise InvalidConfig(
                    f"Expects skill_shares as (skill, share >= 0) pairs with skills of {sorted(names)}; "
                    f"actual {pair!r}."
                )
        if not sum(share for _, share in self.skill_shares) > 0:
            raise InvalidConfig(f"Expects skill_shares with a positive total; actual {self.skill_shares!r}.")
        banded = [band[0] for band in self.skill_bands if band]
        for band in self.skill_bands:
            if (
                len(band) != 3
                or band[0] not in names
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in band[1:])
                or band[1] > band[2]
                or banded.count(band[0]) > 1
            ):
                raise InvalidConfig(
                    f"Expects skill_bands as (skill, low, high) triples with low <= high, at most one per skill, "
                    f"skills of {sorted(names)}; actual {band!r}."
                )

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DefaultStudentConfig:
        """The config saved in ``envgym_build.json`` (JSON lists back to tuples)."""
        values = dict(values)
        if "skill_shares" in values:
            values["skill_shares"] = tuple((skill, share) for skill, share in values["skill_shares"])
        if "skill_bands" in values:
            values["skill_bands"] = tuple(tuple(band) for band in values["skill_bands"])
        return config_from_dict(cls, values, "DefaultStudentConfig field")

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


def envgym_home() -> Path:
    return Path(os.environ.get("ENVGYM_HOME", Path.home() / ".cache" / "envgym"))


def _curriculum(config: DefaultStudentConfig) -> list[PromptCompletion]:
    task = ArithmeticTask()
    # Only the held-out partition matters to the pool, not the split sizes: any val/test question is excluded.
    pool = TrainingPool(TaskSplits.build(task, n_val=1, n_test=1, split_seed=0))
    rng = np.random.default_rng([config.seed, 1])
    total = config.steps * config.batch_size
    weight = sum(share for _, share in config.skill_shares)
    counts = {skill: round(total * share / weight) for skill, share in config.skill_shares}
    keep = {
        skill: lambda ex, lo=low, hi=high: lo <= difficulty(task, ex) <= hi for skill, low, high in config.skill_bands
    }
    # A pre-training stream, repeats and all (distinct=False), of the covered bands only.
    examples = pool.sample_plan(counts, rng, distinct=False, keep=keep)
    tokenizer = build_char_tokenizer()
    return [
        PromptCompletion(format_prompt(tokenizer, ex.question), format_completion(tokenizer, ex.answer))
        for ex in examples
    ]


def build_default_student(config: DefaultStudentConfig, out_dir: str | Path, *, progress: bool = True) -> Path:
    """Pre-train the tiny student from scratch and save it as a Hugging Face model directory."""
    out_dir = Path(out_dir)
    torch.manual_seed(config.seed)
    tokenizer = build_char_tokenizer()
    model_config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads,
        num_key_value_heads=config.num_heads,
        max_position_embeddings=128,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )
    model = LlamaForCausalLM(model_config)
    pairs = _curriculum(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.peak_lr, weight_decay=0.0)
    floor = config.final_lr / config.peak_lr

    def schedule(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        progress_ = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress_)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    model.train()
    train_on_pairs(
        model,
        tokenizer,
        pairs,
        optimizer=optimizer,
        scheduler=scheduler,
        batch_size=config.batch_size,
        epochs=1,
        max_length=64,
        seed=config.seed,
        progress=progress,
    )
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    weights = (out_dir / "model.safetensors").read_bytes()
    build = {
        "config": asdict(config),
        "weights_sha256": hashlib.sha256(weights).hexdigest(),
        # Bit-identity holds only on one machine: what built these weights, and what they do (the profile a
        # rebuild elsewhere is compared with, within PROFILE_TOLERANCE).
        "built_on": machine_record(),
        "test_profile": skill_profile(out_dir, threads=torch.get_num_threads()),
    }
    (out_dir / BUILD_FILE).write_text(json.dumps(build, indent=2) + "\n")
    return out_dir


def skill_profile(model_dir: str | Path, *, threads: int = 1) -> dict[str, float]:
    """Per-skill accuracy of the student in ``model_dir`` on the environment's default test split (400 held-out
    questions per skill, never in any curriculum): the starting profile a rebuild must reproduce."""
    from envgym.skill_list_config import SkillListConfig
    from students.hf_student import HFStudent
    from students.hf_student_config import HFStudentConfig

    env_config = SkillListConfig()
    task = ArithmeticTask()
    splits = TaskSplits.build(task, n_val=env_config.n_val, n_test=env_config.n_test, split_seed=env_config.split_seed)
    # Large batches: 3,200 greedy answers in a few seconds even from a student that rambles to max_new_tokens.
    student = HFStudent(model_dir, HFStudentConfig(num_threads=threads, eval_batch_size=400))
    questions = splits.all_questions("test")
    answers = student.answer([ex.question for ex in questions])
    scores: dict[str, list[float]] = {}
    for example, answer in zip(questions, answers, strict=True):
        scores.setdefault(example.skill, []).append(task.score(example, answer))
    student.close()
    return {skill: round(float(np.mean(values)), 4) for skill, values in scores.items()}


def shipped_build() -> dict | None:
    path = SHIPPED_DIR / BUILD_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def default_student_dir(config: DefaultStudentConfig | None = None, *, progress: bool = True) -> Path:
    """Directory of the default student for ``config``: the shipped weights when they match, else a cached
    build under ``$ENVGYM_HOME/students`` (built now if missing, a few minutes on 2 cores)."""
    config = config or DefaultStudentConfig()
    shipped = shipped_build()
    if shipped is not None and shipped["config"] == json.loads(json.dumps(asdict(config))):
        return SHIPPED_DIR
    target = envgym_home() / "students" / f"default-{config.fingerprint()}"
    return build_dir_once(
        target,
        lambda path: (path / BUILD_FILE).is_file(),
        lambda workdir: build_default_student(config, workdir / "student", progress=progress),
    )
