"""The generation seam: how a student's answers are produced for evaluation.

Three backends behind one Protocol (:class:`Generator`), chosen by ``HFStudentConfig.generator``:

* ``"transformers"`` (default): batched greedy ``model.generate`` in the student's own process, left padding,
  KV cache, inputs on the model's device.
* ``"openai"``: any OpenAI-compatible server (``vllm serve MODEL --enable-lora``, ``transformers serve``, the local
  llama.cpp server) through :class:`skills.llm.LLMClient`'s completions API. With ``sync="lora"`` the student's
  LoRA adapter is saved after every change and loaded into the server (vLLM's ``/v1/load_lora_adapter``; the
  previous one is unloaded), and requests name it as the model, so the server answers with the weights being
  trained. ``sync="none"`` evaluates the served model as it is (a frozen student, or a check of the plumbing).
* ``"vllm"``: in-process ``vllm.LLM`` with a ``LoRARequest`` per adapter version (optional ``[vllm]`` extra, in a
  separate GPU environment: vLLM pins its own torch; imported lazily with an install hint).

Server and vLLM backends need LoRA for training students: merging full weights into a server every step is not
what they are for. :class:`AdapterBook` does the adapter bookkeeping both share.
"""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch

from skills.errors import InvalidConfig, LLMUnavailable

if TYPE_CHECKING:
    from students.hf_student import HFStudent

VLLM_HINT = (
    "The in-process vLLM generator needs vLLM in a separate GPU environment (vLLM pins its own torch and "
    'transformers): pip install -e ".[vllm]" there. On this machine use generator="transformers" or "openai".'
)


class Generator(Protocol):
    """Greedy completions of ``prompts`` with the student's current weights."""

    def generate(self, student: HFStudent, prompts: Sequence[str]) -> list[str]: ...


class TransformersGenerator:
    """Batched greedy generation in the student's process (``config.eval_batch_size`` prompts per call)."""

    def generate(self, student: HFStudent, prompts: Sequence[str]) -> list[str]:
        return self._generate(student, prompts, do_sample=False)

    def sample(
        self, student: HFStudent, prompts: Sequence[str], k: int, *, temperature: float, seed: int
    ) -> list[list[str]]:
        """``k`` sampled completions per prompt, seeded without touching the process's global RNG state."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            flat = self._generate(student, prompts, do_sample=True, temperature=temperature, num_return_sequences=k)
        return [flat[i * k : (i + 1) * k] for i in range(len(prompts))]

    @torch.no_grad()
    def _generate(self, student: HFStudent, prompts: Sequence[str], **sampling: Any) -> list[str]:
        model, tokenizer, config = student.model, student.tokenizer, student.config
        model.eval()
        tokenizer.padding_side = "left"
        answers: list[str] = []
        for start in range(0, len(prompts), config.eval_batch_size):
            # On the model's device: after Trainer has moved the model to a GPU, CPU inputs would not match.
            batch = tokenizer(
                list(prompts[start : start + config.eval_batch_size]),
                return_tensors="pt",
                padding=True,
                add_special_tokens=True,
            ).to(model.device)
            output = model.generate(
                **batch,
                max_new_tokens=config.max_new_tokens,
                use_cache=True,
                **sampling,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
            new_tokens = output[:, batch["input_ids"].shape[1] :]
            answers.extend(t.strip() for t in tokenizer.batch_decode(new_tokens, skip_special_tokens=True))
        return answers


@dataclass(frozen=True)
class Adapter:
    """One saved version of a student's LoRA adapter: what a server or vLLM is told to load."""

    name: str
    lora_id: int
    path: Path


class AdapterBook:
    """Saves the student's LoRA adapter whenever its weights changed (``student.weights_version``), names each
    version (``envgym-<id>``, ids from 1 as vLLM wants), and removes a version's files once a newer one is live."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.current: Adapter | None = None
        self._version: int | None = None
        self._next_id = 1

    def sync(self, student: HFStudent) -> tuple[Adapter, Adapter | None]:
        """``(adapter to use, the one it replaces or None)``; saves a new version only when the weights changed."""
        if not student.config.lora:
            raise InvalidConfig(
                "Expects a LoRA student (HFStudentConfig.lora=True) for a server or vLLM generator that follows "
                "training: they load each step's adapter. Use generator='transformers' for full fine-tuning."
            )
        if self.current is not None and self._version == student.weights_version:
            return self.current, None
        adapter = Adapter(f"envgym-{self._next_id}", self._next_id, self.directory / f"adapter-{self._next_id}")
        student.model.save_pretrained(adapter.path)  # peft writes the adapter only
        previous, self.current = self.current, adapter
        self._version, self._next_id = student.weights_version, self._next_id + 1
        return adapter, previous

    def retire(self, adapter: Adapter) -> None:
        shutil.rmtree(adapter.path, ignore_errors=True)


class OpenAIGenerator:
    """Completions from an OpenAI-compatible server (see the module docstring).

    Args:
        llm: the endpoint (``LLMClientConfig`` fields); ``api`` is forced to ``completions``.
        adapter_dir: where adapter versions are saved (a path the server can read: the same machine or a shared
            filesystem).
        sync: ``"lora"`` (load each adapter version into the server) or ``"none"`` (the served model as is).
    """

    def __init__(self, llm: Any, adapter_dir: str | Path, *, sync: str = "lora") -> None:
        from skills.llm import LLMClient

        if sync not in ("lora", "none"):
            raise InvalidConfig(f"Expects sync to be 'lora' or 'none'; actual {sync!r}.")
        self.client = LLMClient({**dict(llm or {}), "api": "completions"})
        self.sync = sync
        self.book = AdapterBook(adapter_dir)

    def generate(self, student: HFStudent, prompts: Sequence[str]) -> list[str]:
        model = self.client.config.model
        if self.sync == "lora":
            adapter, previous = self.book.sync(student)
            if previous is not None or not getattr(self, "_loaded", False):
                self._post("load_lora_adapter", {"lora_name": adapter.name, "lora_path": str(adapter.path)})
                self._loaded = True
                if previous is not None:
                    self._post("unload_lora_adapter", {"lora_name": previous.name})
                    self.book.retire(previous)
            model = adapter.name
        eos = student.tokenizer.eos_token
        stop = [eos] if eos else None
        replies = self.client.map(
            lambda prompt: self.client.complete(
                prompt, max_tokens=student.config.max_new_tokens, temperature=0.0, stop=stop, model=model
            ),
            prompts,
        )
        return [reply.strip() for reply in replies]

    def _post(self, endpoint: str, body: dict[str, Any]) -> None:
        """vLLM's dynamic LoRA endpoints (``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``), next to ``/v1``."""
        url = f"{self.client.config.base_url.rstrip('/')}/{endpoint}"
        request = urllib.request.Request(
            url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.client.config.timeout):
                pass
        except (urllib.error.URLError, OSError) as err:
            raise LLMUnavailable(
                f"The generation server at {url} refused to {endpoint.replace('_', ' ')} ({err}). Start vLLM with "
                "--enable-lora and VLLM_ALLOW_RUNTIME_LORA_UPDATING=True, or use sync='none' for a frozen student."
            ) from None


class VLLMGenerator:
    """In-process vLLM with one ``LoRARequest`` per adapter version (GPU; the ``[vllm]`` extra)."""

    def __init__(self, model_dir: str | Path, adapter_dir: str | Path, *, max_lora_rank: int = 16) -> None:
        try:
            import vllm
        except ImportError:
            raise InvalidConfig(VLLM_HINT) from None
        self._vllm = vllm
        self.llm = vllm.LLM(model=str(model_dir), enable_lora=True, max_lora_rank=max_lora_rank)
        self.book = AdapterBook(adapter_dir)

    def generate(self, student: HFStudent, prompts: Sequence[str]) -> list[str]:
        adapter, previous = self.book.sync(student)
        request = self._vllm.lora.request.LoRARequest(*lora_request_args(adapter))
        params = self._vllm.SamplingParams(**sampling_args(student))
        outputs = self.llm.generate(list(prompts), params, lora_request=request, use_tqdm=False)
        if previous is not None:
            self.book.retire(previous)
        return [output.outputs[0].text.strip() for output in outputs]


def lora_request_args(adapter: Adapter) -> tuple[str, int, str]:
    """``LoRARequest(lora_name, lora_int_id, lora_path)`` arguments for an adapter version."""
    return adapter.name, adapter.lora_id, str(adapter.path)


def sampling_args(student: HFStudent) -> dict[str, Any]:
    """vLLM ``SamplingParams`` for the student's greedy evaluation."""
    eos = student.tokenizer.eos_token
    return {"temperature": 0.0, "max_tokens": student.config.max_new_tokens, "stop": [eos] if eos else None}


def make_generator(student: HFStudent) -> Generator:
    """The backend ``student.config.generator`` names."""
    config = student.config
    if config.generator == "transformers":
        return TransformersGenerator()
    adapter_dir = Path(student.work_dir) / "adapters"
    if config.generator == "openai":
        return OpenAIGenerator(config.generator_llm, adapter_dir, sync=config.generator_sync)
    return VLLMGenerator(student.model_dir, adapter_dir, max_lora_rank=config.lora_r)
