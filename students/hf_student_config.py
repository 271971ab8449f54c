"""Configuration of :class:`students.HFStudent`."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class HFStudentConfig:
    """How an :class:`~students.HFStudent` trains and answers. Every field has a safe default for the
    tiny built-in student on a CPU."""

    learning_rate: float = field(default=5e-4, metadata={"help": "AdamW learning rate, constant across the episode."})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay."})
    batch_size: int = field(default=64, metadata={"help": "Training micro-batch size."})
    epochs: int = field(default=2, metadata={"help": "Passes over each step's training data."})
    max_length: int = field(
        default=128, metadata={"help": "Longest prompt+answer in tokens; a longer training example is an error."}
    )
    lora: bool = field(default=False, metadata={"help": "Train LoRA adapters (peft) instead of all weights."})
    lora_r: int = field(default=8, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA scaling numerator."})
    lora_init_seed: int = field(
        default=0, metadata={"help": "Seed of the LoRA adapters' initialisation (same seed, same adapters)."}
    )
    lora_target_modules: str | list[str] = field(
        default="all-linear", metadata={"help": "Modules that get LoRA adapters ('all-linear' or names)."}
    )
    eval_batch_size: int = field(default=512, metadata={"help": "Questions per batched generate call."})
    max_new_tokens: int = field(default=8, metadata={"help": "Longest answer generated, in tokens."})
    num_threads: int = field(
        default=0,
        metadata={
            "help": "torch CPU threads; 0 = $ENVGYM_NUM_THREADS if set, else min(2, cores). On a 2-core box, "
            "oversubscribed threads make training 4-20x slower: use 1 per process when running several."
        },
    )
    prompt_template: str = field(
        default="Question: {question}\nAnswer:",
        metadata={"help": "Prompt for tokenizers without a chat template; the answer follows a space."},
    )

    def __post_init__(self) -> None:
        for name in ("batch_size", "epochs", "max_length", "eval_batch_size", "max_new_tokens", "lora_r"):
            if getattr(self, name) < 1:
                raise ValueError(f"Expects {name} >= 1; actual {getattr(self, name)}.")
        if self.learning_rate <= 0:
            raise ValueError(f"Expects learning_rate > 0; actual {self.learning_rate}.")
        if self.num_threads < 0:
            raise ValueError(f"Expects num_threads >= 0 (0 = automatic); actual {self.num_threads}.")
