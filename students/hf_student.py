"""A student wrapping any Hugging Face causal LM directory: full fine-tuning or LoRA, batched greedy answers."""

from __future__ import annotations

import copy
import functools
import gc
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel
from transformers.utils import logging as hf_logging

from skills.errors import DamagedCheckpoint, InvalidConfig, InvalidPlan, ResetNeeded
from skills.task import Example, PreferencePair
from students.generation import TransformersGenerator, make_generator
from students.hf_student_config import HFStudentConfig
from students.training import (
    PromptCompletion,
    PromptPreference,
    format_completion,
    format_prompt,
    train_on_pairs,
    train_on_preferences,
)

_WEIGHTS = "student_weights.safetensors"
_OPTIMIZER = "optimizer.pt"
# A token is rarely longer than this many characters, so longer text is over max_length without tokenizing it
# (an untrusted teacher's megabyte string is refused in microseconds).
_MAX_CHARS_PER_TOKEN = 32


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """torch's intra-op thread count set to ``n`` for the block, then restored: a student never changes it for the
    whole process (several envs may share a worker)."""
    before = torch.get_num_threads()
    if n == before:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _in_own_threads(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def run(self: HFStudent, *args: Any, **kwargs: Any) -> Any:
        if not hasattr(self, "model"):
            raise ResetNeeded(f"Expects an open student; {method.__name__}() was called after close().")
        with torch_threads(self.threads):
            return method(self, *args, **kwargs)

    return run


def detach_gguf_quantizer(model: PreTrainedModel) -> None:
    """A GGUF-loaded model is already dequantised but keeps its quantizer; detach it so the model trains and
    saves (and later loads) as a plain float checkpoint."""
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


class HFStudent:
    """A trainable student around a Hugging Face causal-LM directory.

    Trains with loss on the answer tokens only (``transformers.Trainer``, one AdamW kept across calls),
    fully or through peft LoRA adapters, and answers with batched greedy generation (left padding, KV cache).

    Example:
        >>> from students import HFStudent, default_student_dir
        >>> student = HFStudent(default_student_dir())
        >>> student.answer(["12+34="])  # the shipped mid-training student is still learning addition
        ['40']
    """

    def __init__(
        self,
        model_dir: str | Path,
        config: HFStudentConfig | None = None,
        *,
        gguf_file: str | None = None,
    ) -> None:
        self.model_dir = Path(model_dir)
        if not self.model_dir.is_dir():
            raise InvalidConfig(
                f"Expects a Hugging Face model directory; actual {str(self.model_dir)!r} does not exist."
            )
        self.config = config or HFStudentConfig()
        self.gguf_file = gguf_file
        # Applied around this student's own work only (torch_threads), never set for the whole process: envs in
        # one worker (Ray, tests) may want different counts.
        self.threads = (
            self.config.num_threads or int(os.environ.get("ENVGYM_NUM_THREADS", 0)) or min(2, os.cpu_count() or 1)
        )
        load_kwargs: dict[str, Any] = {"gguf_file": gguf_file} if gguf_file else {}
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir, **load_kwargs)
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self._load_kwargs = load_kwargs
        self.model: PreTrainedModel
        self.optimizer: torch.optim.Optimizer
        self.reset()
        context = getattr(self.model.config, "max_position_embeddings", None)
        if isinstance(context, int) and self.config.max_length > context:
            raise InvalidConfig(
                f"Expects HFStudentConfig.max_length <= the model's context ({context} positions, "
                f"max_position_embeddings of {str(self.model_dir)!r}); actual {self.config.max_length}. "
                f"Set max_length={context} or use a model with a longer context."
            )
        # Characters the tokenizer maps to its unknown token (a char-level vocab has no full-width digits).
        self._unk_id = self.tokenizer.unk_token_id
        self.generator = make_generator(self)

    # -- state -----------------------------------------------------------------------------------------
    def reset(self) -> None:
        # Resetting happens every episode: keep transformers' per-load progress bar out of the user's console.
        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            model = AutoModelForCausalLM.from_pretrained(self.model_dir, dtype=torch.float32, **self._load_kwargs)
        finally:
            if bars:
                hf_logging.enable_progress_bar()
        if self.gguf_file:
            detach_gguf_quantizer(model)
        if self.config.lora:
            from peft import LoraConfig, get_peft_model

            lora = LoraConfig(
                r=self.config.lora_r,
                lora_alpha=self.config.lora_alpha,
                target_modules=self.config.lora_target_modules,
                lora_dropout=0.0,
                task_type="CAUSAL_LM",
            )
            # peft initialises lora_A from torch's global RNG: seed a forked RNG so reset() is reproducible.
            with torch.random.fork_rng():
                torch.manual_seed(self.config.lora_init_seed)
                model = get_peft_model(model, lora)
        model.eval()
        self.model = model
        self.weights_version = getattr(self, "weights_version", 0) + 1  # server generators re-sync on a change
        self.optimizer = torch.optim.AdamW(
            [p for p in model.parameters() if p.requires_grad],
            lr=self.config.learning_rate,
            weight_decay=self.config.weight_decay,
        )

    def _trainable_state(self) -> dict[str, torch.Tensor]:
        return {
            name: param.detach().contiguous() for name, param in self.model.named_parameters() if param.requires_grad
        }

    def save(self, directory: str | Path) -> None:
        """Write the trainable weights and the optimizer state (enough to resume training exactly)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_file(self._trainable_state(), str(directory / _WEIGHTS))
        torch.save(self.optimizer.state_dict(), directory / _OPTIMIZER)

    def load(self, directory: str | Path) -> None:
        directory = Path(directory)
        weights, optimizer = directory / _WEIGHTS, directory / _OPTIMIZER
        for path in (weights, optimizer):
            if not path.is_file():
                raise DamagedCheckpoint(f"Expects a student checkpoint file {str(path)!r}; it is missing.")
        try:
            state = load_file(str(weights))
        except Exception as err:  # safetensors raises its own SafetensorError for truncated files
            raise DamagedCheckpoint(f"Student weights {str(weights)!r} are damaged ({err}).") from None
        try:
            optimizer_state = torch.load(optimizer, weights_only=True)
        except Exception as err:  # EOFError, UnpicklingError, RuntimeError: any unreadable file
            raise DamagedCheckpoint(
                f"Optimizer state {str(optimizer)!r} is damaged ({type(err).__name__}: {err})."
            ) from None
        self.reset()
        expected = self._trainable_state()
        mismatched = sorted(name for name in expected if name not in state or state[name].shape != expected[name].shape)
        if mismatched or set(state) - set(expected):
            example = (mismatched or sorted(state))[:3]
            raise DamagedCheckpoint(
                f"Student weights {str(weights)!r} do not match this student (e.g. {example}): the checkpoint was "
                "written by another model or configuration."
            )
        params = dict(self.model.named_parameters())
        with torch.no_grad():
            for name, tensor in state.items():
                params[name].copy_(tensor)
        self.weights_version += 1
        try:
            self.optimizer.load_state_dict(optimizer_state)
        except (ValueError, KeyError, TypeError) as err:
            raise DamagedCheckpoint(
                f"Optimizer state {str(optimizer)!r} does not match this student ({err})."
            ) from None

    def snapshot(self) -> dict[str, Any]:
        """An in-memory copy of everything training depends on (trainable weights, optimizer state): cheap
        lookahead for the oracle and search teachers, without touching the disk."""
        return {
            "weights": {name: tensor.clone() for name, tensor in self._trainable_state().items()},
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),
        }

    def restore(self, snapshot: dict[str, Any]) -> None:
        """Return to a :meth:`snapshot` exactly; the snapshot stays reusable (nothing aliases it)."""
        params = dict(self.model.named_parameters())
        with torch.no_grad():
            for name, tensor in snapshot["weights"].items():
                params[name].copy_(tensor)
        self.optimizer.load_state_dict(copy.deepcopy(snapshot["optimizer"]))
        self.weights_version += 1

    def export(self, directory: str | Path) -> None:
        """Save a standalone Hugging Face model directory (LoRA adapters merged) plus the tokenizer."""
        # Merge a copy: merging in place would strip the adapters from the live, still-training student.
        model = copy.deepcopy(self.model).merge_and_unload() if self.config.lora else self.model
        model.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    # -- formatting ------------------------------------------------------------------------------------
    def format_prompt(self, question: str) -> str:
        return format_prompt(self.tokenizer, question, self.config.prompt_template)

    def format_completion(self, answer: str) -> str:
        return format_completion(self.tokenizer, answer)

    def check_inputs(self, questions: Sequence[str], answers: Sequence[str] | None = None) -> list[str | None]:
        """Why each question (+ answer) cannot be given to this student, or None: unknown characters, or more
        tokens than ``max_length`` (prompt + answer for training, prompt + ``max_new_tokens`` for evaluation)."""
        limit = self.config.max_length
        problems: list[str | None] = [None] * len(questions)
        if answers is not None and len(answers) != len(questions):
            raise InvalidPlan(f"Expects one answer per question; actual {len(answers)} for {len(questions)}.")
        todo = []
        for i, question in enumerate(questions):
            chars = len(question) + (len(answers[i]) if answers is not None else 0)
            if chars > limit * _MAX_CHARS_PER_TOKEN:
                problems[i] = f"{chars:,} characters, far over the student's max_length of {limit} tokens"
            else:
                todo.append(i)
        if not todo:
            return problems
        prompts = self.tokenizer([self.format_prompt(questions[i]) for i in todo], add_special_tokens=True)
        completions = (
            self.tokenizer([self.format_completion(answers[i]) for i in todo], add_special_tokens=False)["input_ids"]
            if answers is not None
            else None
        )
        for j, i in enumerate(todo):
            ids = prompts["input_ids"][j] + (completions[j] if completions is not None else [])
            if self._unk_id is not None and self._unk_id in ids:
                text = questions[i] + (answers[i] if answers is not None else "")
                bad = sorted(
                    {c for c in text if self._unk_id in self.tokenizer(c, add_special_tokens=False)["input_ids"]}
                )
                problems[i] = f"characters the student's tokenizer cannot represent: {''.join(bad)!r}"
                continue
            length = len(ids) + (0 if completions is not None else self.config.max_new_tokens)
            if length > limit:
                what = (
                    "prompt+answer"
                    if completions is not None
                    else f"prompt+max_new_tokens ({self.config.max_new_tokens})"
                )
                problems[i] = f"{what} is {length} tokens, over the student's max_length of {limit}"
        return problems

    def close(self) -> None:
        """Release the model and optimizer (and GPU memory); the student cannot train or answer afterwards."""
        for name in ("model", "optimizer"):
            if hasattr(self, name):
                delattr(self, name)
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    # -- learning --------------------------------------------------------------------------------------
    @_in_own_threads
    def train(self, examples: Sequence[Example], *, seed: int) -> dict[str, Any]:
        """``config.epochs`` epochs over ``examples``; returns the mean loss (None for no data) and seconds.

        At most ``config.train_chunk_size`` examples are tokenized at once: a larger call runs each epoch over
        seeded-shuffled chunks (one epoch per chunk), so memory stays bounded whatever the budget; a call that
        fits in one chunk is a single ``epochs``-epoch Trainer run.
        """
        start = time.perf_counter()
        pairs = [PromptCompletion(self.format_prompt(e.question), self.format_completion(e.answer)) for e in examples]
        chunk = self.config.train_chunk_size
        if len(pairs) <= chunk:
            runs = [(pairs, self.config.epochs, seed)]
        else:
            runs = []
            for epoch in range(self.config.epochs):
                order = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(seed + epoch))
                for k in range(0, len(pairs), chunk):
                    part = [pairs[i] for i in order[k : k + chunk].tolist()]
                    runs.append((part, 1, (seed + 7919 * (epoch * len(pairs) + k)) % 2**32))
        losses = []
        run_steps = [math.ceil(len(part) / self.config.batch_size) * epochs for part, epochs, _ in runs]
        steps_done = 0
        for (part, epochs, run_seed), steps in zip(runs, run_steps, strict=True):
            if not part:
                continue
            # One schedule spans the whole call, across chunks: each chunk's scheduler starts where the last ended.
            scheduler = torch.optim.lr_scheduler.LambdaLR(
                self.optimizer, partial(self._lr_factor, offset=steps_done, total=sum(run_steps))
            )
            steps_done += steps
            loss = train_on_pairs(
                self.model,
                self.tokenizer,
                part,
                optimizer=self.optimizer,
                scheduler=scheduler,
                batch_size=self.config.batch_size,
                epochs=epochs,
                max_length=self.config.max_length,
                seed=run_seed,
            )
            losses.append((loss, len(part)))
        if losses:
            self.weights_version += 1
        mean = sum(loss * n for loss, n in losses) / sum(n for _, n in losses) if losses else None
        return {
            "loss": mean if mean is not None and math.isfinite(mean) else None,
            "examples": len(pairs),
            "seconds": time.perf_counter() - start,
        }

    @_in_own_threads
    def train_preferences(self, pairs: Sequence[PreferencePair], *, seed: int) -> dict[str, Any]:
        """DPO on ``pairs`` (TRL's ``DPOTrainer``; ``config.dpo_*``), LoRA or full like :meth:`train`, with the
        same AdamW (so a checkpoint resumes it exactly) and the same prompt format as SFT and answering.

        The reference is a frozen copy of the student as it is when the call begins: after SFT steps or earlier
        SPaR iterations, DPO moves the student away from where it is, not from the base model on disk.
        """
        start = time.perf_counter()
        triples = [
            PromptPreference(
                self.format_prompt(pair.question),
                self.format_completion(pair.chosen),
                self.format_completion(pair.rejected),
            )
            for pair in pairs
        ]
        if not triples:
            return {"loss": None, "pairs": 0, "seconds": time.perf_counter() - start}
        steps = math.ceil(len(triples) / self.config.dpo_batch_size) * self.config.dpo_epochs
        scale = (self.config.dpo_learning_rate or self.config.learning_rate) / self.config.learning_rate
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: scale * self._lr_factor(step, offset=0, total=steps)
        )
        # The reference is a plain model: TRL patches its forward (a fused LM head), which a peft wrapper hides.
        reference = copy.deepcopy(self.model).merge_and_unload() if self.config.lora else copy.deepcopy(self.model)
        loss = train_on_preferences(
            self.model,
            reference,
            self.tokenizer,
            triples,
            optimizer=self.optimizer,
            scheduler=scheduler,
            beta=self.config.dpo_beta,
            loss_type=self.config.dpo_loss_type,
            sft_weight=self.config.dpo_sft_weight,
            batch_size=self.config.dpo_batch_size,
            epochs=self.config.dpo_epochs,
            max_length=self.config.max_length,
            seed=seed,
        )
        self.weights_version += 1
        return {
            "loss": loss if math.isfinite(loss) else None,
            "pairs": len(triples),
            "seconds": time.perf_counter() - start,
        }

    def _lr_factor(self, step: int, *, offset: int, total: int) -> float:
        """Multiplier of the peak learning rate at optimizer step ``offset + step`` of a ``total``-step call."""
        if self.config.lr_schedule == "constant":
            return 1.0
        step += offset
        warmup = int(self.config.warmup_ratio * total)
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total - step) / max(1, total - warmup))

    @_in_own_threads
    def answer(self, questions: Sequence[str]) -> list[str]:
        """Greedy answers from the configured generator (``config.generator``; batched in-process by default)."""
        return self.generator.generate(self, [self.format_prompt(q) for q in questions])

    @_in_own_threads
    def answer_logprob(self, question: str, answer: str) -> float:
        """log p(``answer`` and its end token | ``question``) under the student now, in the prompt format it trains
        and answers with: what DPO compares between a pair's chosen and rejected answers."""
        prompt = self.format_prompt(question)
        start = len(self.tokenizer(prompt, add_special_tokens=False)["input_ids"])
        ids = self.tokenizer(prompt + self.format_completion(answer), add_special_tokens=False)["input_ids"]
        ids = torch.tensor([ids], device=self.model.device)
        with torch.no_grad():
            logits = self.model(ids).logits[0, :-1].float().log_softmax(-1)
        return float(logits[start - 1 :].gather(1, ids[0, start:, None]).sum())

    @_in_own_threads
    def sample_answers(self, questions: Sequence[str], k: int, *, temperature: float, seed: int) -> list[list[str]]:
        """``k`` sampled answers per question (in-process ``transformers`` generation only)."""
        if not isinstance(self.generator, TransformersGenerator):
            raise InvalidConfig(
                f"Expects the 'transformers' generator to sample answers; actual {self.config.generator!r}. Use "
                "difficulty='ground_truth', or the in-process generator."
            )
        return self.generator.sample(
            self, [self.format_prompt(q) for q in questions], k, temperature=temperature, seed=seed
        )

    @property
    def work_dir(self) -> Path:
        """A private directory for this student's files (adapter versions for a server generator), removed at exit."""
        if getattr(self, "_work_dir", None) is None:
            self._work_dir = tempfile.TemporaryDirectory(prefix="envgym-student-")
        return Path(self._work_dir.name)
