"""Configuration of :class:`students.HFStudent`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from skills.errors import InvalidConfig, config_from_dict, unknown_name_error
from skills.llm.client_config import endpoint_fields

PLACEMENTS = ("local", "ray")
GENERATOR_NAMES = ("transformers", "openai", "vllm")
LR_SCHEDULES = ("constant", "linear")
# TRL's pairwise preference losses (DPOConfig.loss_type) a preference call can use; "sft" is dpo_sft_weight's term.
DPO_LOSS_TYPES = ("sigmoid", "ipo", "hinge", "robust", "apo_zero", "apo_down", "nca_pair", "sppo_hard")


@dataclass
class HFStudentConfig:
    """How an :class:`~students.HFStudent` trains and answers. Every field has a safe default for the
    tiny built-in student on a CPU."""

    learning_rate: float = field(
        default=3e-4,
        metadata={
            "help": "AdamW peak learning rate of each training call. 3e-4 suits the built-in tiny student, a "
            "converged base (one step of a single skill's data took every skill to 0 at 1e-3, and all but one to "
            "<= 0.09 at 5e-4); LoRA adapters want ~1e-3; full fine-tuning of a pretrained model ~1e-5 to 1e-4."
        },
    )
    lr_schedule: str = field(
        default="linear",
        metadata={
            "help": "Learning rate within one training call (one teaching step): 'constant', or 'linear' (warm up "
            "over warmup_ratio of the call's optimizer steps, then decay linearly to 0, as TRL's default does). "
            "'linear' lets every step's training settle, so the next evaluation measures the data, not where "
            "the optimizer happened to stop."
        },
    )
    warmup_ratio: float = field(
        default=0.1, metadata={"help": "Share of a call's optimizer steps spent warming up ('linear' schedule)."}
    )
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
    train_chunk_size: int = field(
        default=8192,
        metadata={
            "help": "Most examples tokenized at once: a larger training call runs its epochs chunk by chunk, so "
            "memory stays bounded whatever the budget."
        },
    )
    dpo_beta: float = field(
        default=0.1,
        metadata={
            "help": "DPO's beta (preference plans, SPaR): how far the student may move from its reference, the "
            "weights it had when the preference call began. Larger = closer to the reference."
        },
    )
    dpo_learning_rate: float = field(
        default=1e-5,
        metadata={
            "help": "Peak learning rate of a preference (DPO) call (same AdamW as SFT); 0 = learning_rate. Measured "
            "on the warmed-up instruction actor: at the SFT rate (3e-4) one SPaR iteration took its held-out "
            "constraint satisfaction from 0.59 to 0.08; 1e-5 keeps the default actor's, and lowers a weaker actor's "
            "(benchmarks/spar/warmup2500)."
        },
    )
    dpo_loss_type: str = field(
        default="sigmoid",
        metadata={
            "help": "The preference loss (TRL's DPOConfig.loss_type): 'sigmoid' (DPO), 'ipo', 'hinge', 'robust', "
            "'apo_zero' and 'apo_down' (APO: anchored to raise or lower the chosen answers' likelihood), 'nca_pair', "
            "'sppo_hard'."
        },
    )
    dpo_sft_weight: float = field(
        default=0.0,
        metadata={
            "help": "Weight of an SFT (NLL) term on the chosen answers beside the DPO loss (RPO, Pang et al. 2024; "
            "TRL loss_type ['sigmoid', 'sft']): keeps DPO from lowering the chosen answers' likelihood too. 0 = "
            "plain DPO."
        },
    )
    dpo_epochs: int = field(default=2, metadata={"help": "Passes over each preference call's pairs."})
    dpo_batch_size: int = field(default=16, metadata={"help": "Preference pairs per DPO micro-batch."})
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
    generator: str = field(
        default="transformers",
        metadata={
            "help": "How answers are generated: 'transformers' (in process), 'openai' (an OpenAI-compatible server, "
            "e.g. vllm serve --enable-lora; set generator_llm) or 'vllm' (in-process vLLM; GPU, the [vllm] extra)."
        },
    )
    generator_llm: Any = field(
        default=None,
        metadata={"help": "The server of generator='openai': LLMClientConfig fields as a dict, or JSON text."},
    )
    generator_sync: str = field(
        default="lora",
        metadata={
            "help": "generator='openai': 'lora' loads each trained adapter into the server; 'none' evaluates the "
            "served model as it is."
        },
    )
    placement: str = field(
        default="local",
        metadata={
            "help": "'local' (in this process) or 'ray' (a Ray actor; Ray must be running, envgym run starts a "
            "local one): same numbers, another process or node."
        },
    )
    ray_num_gpus: float = field(
        default=0.0, metadata={"help": "GPUs the student's Ray actor requests (placement='ray'); 0 = CPU only."}
    )
    ray_num_cpus: float = field(
        default=1.0,
        metadata={"help": "CPUs the student's Ray actor requests (placement='ray'); its torch threads follow."},
    )

    def __post_init__(self) -> None:
        for name in (
            "batch_size",
            "epochs",
            "max_length",
            "train_chunk_size",
            "eval_batch_size",
            "max_new_tokens",
            "lora_r",
            "dpo_epochs",
            "dpo_batch_size",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidConfig(f"Expects HFStudentConfig.{name} to be an integer >= 1; actual {value!r}.")
        if not isinstance(self.learning_rate, (int, float)) or not self.learning_rate > 0:
            raise InvalidConfig(f"Expects HFStudentConfig.learning_rate > 0; actual {self.learning_rate!r}.")
        if not isinstance(self.dpo_beta, (int, float)) or not self.dpo_beta > 0:
            raise InvalidConfig(f"Expects HFStudentConfig.dpo_beta > 0; actual {self.dpo_beta!r}.")
        if self.dpo_loss_type not in DPO_LOSS_TYPES:
            raise unknown_name_error("HFStudentConfig.dpo_loss_type", str(self.dpo_loss_type), DPO_LOSS_TYPES)
        if not isinstance(self.dpo_sft_weight, (int, float)) or self.dpo_sft_weight < 0:
            raise InvalidConfig(f"Expects HFStudentConfig.dpo_sft_weight >= 0; actual {self.dpo_sft_weight!r}.")
        if not isinstance(self.dpo_learning_rate, (int, float)) or self.dpo_learning_rate < 0:
            raise InvalidConfig(
                "Expects HFStudentConfig.dpo_learning_rate >= 0 (0 = learning_rate); actual "
                f"{self.dpo_learning_rate!r}."
            )
        if self.lr_schedule not in LR_SCHEDULES:
            raise InvalidConfig(
                f"Expects HFStudentConfig.lr_schedule to be one of {LR_SCHEDULES}; actual {self.lr_schedule!r}."
            )
        if not isinstance(self.warmup_ratio, (int, float)) or not 0.0 <= self.warmup_ratio < 1.0:
            raise InvalidConfig(f"Expects 0 <= HFStudentConfig.warmup_ratio < 1; actual {self.warmup_ratio!r}.")
        if self.generator not in GENERATOR_NAMES:
            raise InvalidConfig(
                f"Expects HFStudentConfig.generator to be one of {GENERATOR_NAMES}; actual {self.generator!r}."
            )
        if self.generator_sync not in ("lora", "none"):
            raise InvalidConfig(
                f"Expects HFStudentConfig.generator_sync 'lora' or 'none'; actual {self.generator_sync!r}."
            )
        self.generator_llm = endpoint_fields(self.generator_llm, "generator_llm")
        if self.generator == "openai" and not isinstance(self.generator_llm, dict):
            raise InvalidConfig(
                "Expects generator_llm (a dict of LLMClientConfig fields: base_url, model, ...) with "
                f"generator='openai'; actual {self.generator_llm!r}."
            )
        if self.generator in ("openai", "vllm") and self.generator_sync == "lora" and not self.lora:
            raise InvalidConfig(
                f"Expects lora=True with generator={self.generator!r}: the server or vLLM loads each step's LoRA "
                "adapter. Use generator='transformers' for full fine-tuning, or generator_sync='none' (openai) to "
                "evaluate the served model as it is."
            )
        if self.placement not in PLACEMENTS:
            raise InvalidConfig(
                f"Expects HFStudentConfig.placement to be one of {PLACEMENTS}; actual {self.placement!r}."
            )
        for name in ("ray_num_gpus", "ray_num_cpus"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1e6:
                raise InvalidConfig(f"Expects HFStudentConfig.{name} >= 0; actual {value!r}.")
        if not isinstance(self.num_threads, int) or self.num_threads < 0:
            raise InvalidConfig(
                f"Expects HFStudentConfig.num_threads >= 0 (0 = automatic); actual {self.num_threads!r}."
            )

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> HFStudentConfig:
        """Like ``HFStudentConfig(**values)``, but an unknown field gets a did-you-mean error."""
        return config_from_dict(cls, values, "HFStudentConfig field")
