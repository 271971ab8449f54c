"""Supervised fine-tuning of a causal LM on (prompt, answer) pairs with ``transformers.Trainer``.

Loss is on the answer tokens only. The optimizer and schedule are passed in so that a student can keep one
AdamW across many short training calls (continual learning) while the base-student build uses a
warmup+cosine schedule.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.utils.data import Dataset
from transformers import PreTrainedModel, PreTrainedTokenizerBase, Trainer, TrainingArguments
from transformers.trainer_callback import PrinterCallback

from skills.errors import InvalidPlan

IGNORE_INDEX = -100


@dataclass(frozen=True)
class PromptCompletion:
    prompt: str
    completion: str


class _TokenizedPairs(Dataset):
    def __init__(self, pairs: Sequence[PromptCompletion], tokenizer: PreTrainedTokenizerBase, max_length: int) -> None:
        prompts = tokenizer([p.prompt for p in pairs], add_special_tokens=True)["input_ids"]
        answers = tokenizer([p.completion for p in pairs], add_special_tokens=False)["input_ids"]
        self.rows = []
        for pair, prompt_ids, answer_ids in zip(pairs, prompts, answers, strict=True):
            # Truncating would cut the answer (the only trained tokens) and turn the loss into NaN.
            if len(prompt_ids) + len(answer_ids) > max_length:
                raise InvalidPlan(
                    f"Expects prompt+answer of at most max_length={max_length} tokens; actual "
                    f"{len(prompt_ids) + len(answer_ids)} for {pair.prompt[:60]!r}... "
                    "Raise HFStudentConfig.max_length or shorten the example."
                )
            self.rows.append(
                {"input_ids": prompt_ids + answer_ids, "labels": [IGNORE_INDEX] * len(prompt_ids) + answer_ids}
            )

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, list[int]]:
        return self.rows[index]


class _PadCollator:
    """Right-pads a batch; padded positions are masked out of attention and loss."""

    def __init__(self, pad_token_id: int) -> None:
        self.pad_token_id = pad_token_id

    def __call__(self, rows: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        width = max(len(row["input_ids"]) for row in rows)
        ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            n = len(row["input_ids"])
            ids[i, :n] = torch.tensor(row["input_ids"])
            labels[i, :n] = torch.tensor(row["labels"])
            mask[i, :n] = 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def _trainer_arguments(output_dir: str, batch_size: int, epochs: int, seed: int, *, progress: bool = False) -> dict:
    """What SFT's ``TrainingArguments`` and DPO's ``DPOConfig`` share: no saving or logging (the runner records
    everything), seeded data order, the CPU unless a GPU is there."""
    return {
        "output_dir": output_dir,
        "per_device_train_batch_size": batch_size,
        "num_train_epochs": epochs,
        "save_strategy": "no",
        "logging_strategy": "no",
        "report_to": "none",
        "disable_tqdm": not progress,
        "use_cpu": not torch.cuda.is_available(),
        "seed": seed,
        "data_seed": seed,
        "dataloader_pin_memory": False,
    }


DEFAULT_PROMPT_TEMPLATE = "Question: {question}\nAnswer:"


def format_prompt(tokenizer: PreTrainedTokenizerBase, question: str, template: str = DEFAULT_PROMPT_TEMPLATE) -> str:
    """The prompt a student is trained and queried with: the tokenizer's chat template when it has one (a user
    turn and the generation prompt), else ``template``. The one definition, so training and answering agree."""
    if tokenizer.chat_template:
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": question}], add_generation_prompt=True, tokenize=False
        )
    return template.format(question=question)


def format_completion(tokenizer: PreTrainedTokenizerBase, answer: str) -> str:
    """The training target after :func:`format_prompt`: the answer and EOS (after a space for a plain template)."""
    separator = "" if tokenizer.chat_template else " "
    return f"{separator}{answer}{tokenizer.eos_token}"


def train_on_pairs(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    pairs: Sequence[PromptCompletion],
    *,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    batch_size: int,
    epochs: int,
    max_length: int,
    seed: int,
    progress: bool = False,
) -> float:
    """Train ``model`` in place; returns the mean training loss. Same seed and state => same weights."""
    if not pairs:
        return float("nan")
    dataset = _TokenizedPairs(pairs, tokenizer, max_length)
    with tempfile.TemporaryDirectory(prefix="envgym-trainer-") as output_dir:
        args = TrainingArguments(
            **_trainer_arguments(output_dir, batch_size, epochs, seed, progress=progress), remove_unused_columns=False
        )
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=dataset,
            data_collator=_PadCollator(tokenizer.pad_token_id),
            optimizers=(optimizer, scheduler),
        )
        trainer.remove_callback(PrinterCallback)  # it prints a metrics dict after every call
        # Trainer logs an info line per call ("The model is already on multiple devices...") at WARNING+;
        # a whole episode would print dozens of them.
        previous = logging.getLogger("transformers.trainer").level
        logging.getLogger("transformers.trainer").setLevel(logging.ERROR)
        try:
            result = trainer.train()
        finally:
            logging.getLogger("transformers.trainer").setLevel(previous)
    model.eval()
    return float(result.training_loss)


@dataclass(frozen=True)
class PromptPreference:
    prompt: str
    chosen: str
    rejected: str


def train_on_preferences(
    model: PreTrainedModel,
    reference: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    pairs: Sequence[PromptPreference],
    *,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    beta: float,
    loss_type: str = "sigmoid",
    sft_weight: float = 0.0,
    batch_size: int,
    epochs: int,
    max_length: int,
    seed: int,
) -> float:
    """Preference training (TRL's ``DPOTrainer``; ``loss_type`` one of its pairwise losses, ``"sigmoid"`` = DPO) of
    ``model`` in place against the frozen ``reference``; returns the mean training loss. The prompts and completions
    are already formatted (:func:`format_prompt`, :func:`format_completion`), so SFT, DPO and answering see one
    prompt format. Same seed and state => same weights."""
    from datasets import Dataset as HFDataset
    from datasets.utils import logging as datasets_logging
    from trl import DPOConfig, DPOTrainer

    if not pairs:
        return float("nan")
    for pair in pairs:
        # DPOTrainer would truncate silently: a cut completion is a different preference than the one verified.
        for completion in (pair.chosen, pair.rejected):
            length = len(tokenizer(pair.prompt + completion, add_special_tokens=False)["input_ids"])
            if length > max_length:
                raise InvalidPlan(
                    f"Expects prompt+completion of at most max_length={max_length} tokens; actual {length} for "
                    f"{pair.prompt[:60]!r}... Raise HFStudentConfig.max_length or shorten the pair."
                )
    # DPOTrainer patches the policy's forward for its fused LM head (pass-through unless asked); put the class's
    # forward back afterwards, so every call does not wrap the student once more.
    patched = [m for m in (model, getattr(model, "get_base_model", lambda: None)()) if m is not None]
    own_forward = [("forward" in vars(m)) for m in patched]
    dataset = HFDataset.from_list([{"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected} for p in pairs])
    reference.eval()
    for param in reference.parameters():
        param.requires_grad_(False)
    with tempfile.TemporaryDirectory(prefix="envgym-dpo-") as output_dir, warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        args = DPOConfig(
            beta=beta,
            # RPO: an NLL term on the chosen answers beside the preference loss.
            loss_type=[loss_type, "sft"] if sft_weight else [loss_type],
            loss_weights=[1.0, sft_weight] if sft_weight else None,
            max_length=max_length,
            **_trainer_arguments(output_dir, batch_size, epochs, seed),
        )
        # DPOTrainer maps its dataset with a progress bar per call and trips transformers' own deprecation
        # warnings (gradient_checkpointing): an episode of preference steps would print dozens of both.
        bars = datasets_logging.is_progress_bar_enabled()
        datasets_logging.disable_progress_bar()
        previous = logging.getLogger("transformers.trainer").level
        logging.getLogger("transformers.trainer").setLevel(logging.ERROR)
        try:
            trainer = DPOTrainer(
                model=model,
                ref_model=reference,
                args=args,
                train_dataset=dataset,
                processing_class=tokenizer,
                optimizers=(optimizer, scheduler),
            )
            trainer.remove_callback(PrinterCallback)
            result = trainer.train()
        finally:
            logging.getLogger("transformers.trainer").setLevel(previous)
            if bars:
                datasets_logging.enable_progress_bar()
            for module, had_own in zip(patched, own_forward, strict=True):
                if not had_own:
                    vars(module).pop("forward", None)
    model.eval()
    return float(result.training_loss)
