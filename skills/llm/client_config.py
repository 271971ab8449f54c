"""Configuration of :class:`skills.llm.LLMClient`: which OpenAI-compatible endpoint, and how to talk to it.

Its fields become the ``--teacher-<field>`` flags of ``envgym run`` and ``envgym bench`` (and the ``llm_<field>``
settings of an environment's LLM data engine).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from skills.errors import InvalidConfig, config_from_dict

APIS = ("chat", "completions")
# How a JSON schema reaches the server: OpenAI's "json_schema" response format; llama.cpp's
# {"type": "json_object", "schema": ...}; or the schema in the prompt and the reply parsed ("prompt"). "auto" tries
# them in that order and keeps the first the server accepts.
STRUCTURED_OUTPUTS = ("auto", "json_schema", "json_object", "prompt")


@dataclass
class LLMClientConfig:
    """Where an LLM lives and how envgym asks it (any OpenAI-compatible server: OpenAI, ``vllm serve``,
    llama.cpp's server, ``transformers serve``)."""

    base_url: str = field(
        default="http://127.0.0.1:8000/v1",
        metadata={"help": "OpenAI-compatible base URL, e.g. https://api.openai.com/v1 or http://127.0.0.1:8000/v1."},
    )
    model: str = field(default="gemma-3-270m", metadata={"help": "Model name the server serves."})
    api_key_env: str = field(
        default="OPENAI_API_KEY",
        metadata={"help": "Environment variable holding the API key (local servers accept any key)."},
    )
    api: str = field(
        default="chat",
        metadata={"help": "'chat' (/chat/completions) or 'completions' (/completions, for base models)."},
    )
    structured_output: str = field(
        default="auto",
        metadata={
            "help": "How JSON schemas are sent: 'json_schema' (OpenAI), 'json_object' (llama.cpp), 'prompt' "
            "(schema in the prompt, reply parsed) or 'auto' (chat: the first the server accepts; completions: "
            "prompt)."
        },
    )
    temperature: float = field(default=0.0, metadata={"help": "Sampling temperature (0: greedy)."})
    max_tokens: int = field(default=512, metadata={"help": "Most tokens per reply."})
    seed: int = field(default=0, metadata={"help": "Sampling seed sent with each request (servers that honour it)."})
    timeout: float = field(default=60.0, metadata={"help": "Seconds to wait for one reply."})
    max_retries: int = field(
        default=2, metadata={"help": "Retries (exponential backoff) on connection errors, 429 and 5xx."}
    )
    concurrency: int = field(default=4, metadata={"help": "Most requests in flight at once."})
    cache_dir: str | None = field(
        default=None,
        metadata={
            "help": "Directory caching replies by request, for exact replay without the server (a run uses "
            "<run dir>/llm_cache when this is unset)."
        },
    )

    def __post_init__(self) -> None:
        for name in ("base_url", "model", "api_key_env"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise InvalidConfig(f"Expects {name} to be a non-empty string; actual {getattr(self, name)!r}.")
        if not self.base_url.startswith(("http://", "https://")):
            raise InvalidConfig(
                f"Expects base_url to start with http:// or https://; actual {self.base_url!r}. "
                "Example: http://127.0.0.1:8000/v1"
            )
        if self.api not in APIS:
            raise InvalidConfig(f"Expects api to be one of {APIS}; actual {self.api!r}.")
        if self.structured_output not in STRUCTURED_OUTPUTS:
            raise InvalidConfig(
                f"Expects structured_output to be one of {STRUCTURED_OUTPUTS}; actual {self.structured_output!r}."
            )
        for name, minimum in (("max_tokens", 1), ("seed", 0), ("max_retries", 0), ("concurrency", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise InvalidConfig(f"Expects {name} to be an integer >= {minimum}; actual {value!r}.")
        for name in ("temperature", "timeout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise InvalidConfig(f"Expects {name} to be a number >= 0; actual {value!r}.")
        if self.timeout == 0:
            raise InvalidConfig("Expects timeout > 0 seconds; actual 0.")
        if self.cache_dir is not None and not isinstance(self.cache_dir, str):
            self.cache_dir = str(self.cache_dir)

    @classmethod
    def from_kwargs(cls, kwargs: dict[str, Any]) -> LLMClientConfig:
        """Like ``LLMClientConfig(**kwargs)`` but an unknown keyword gets a did-you-mean error."""
        return config_from_dict(cls, kwargs, f"{cls.__name__} field")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def endpoint_fields(value: Any, name: str) -> dict[str, Any] | None:
    """An endpoint setting of another config (``data_engine_llm``, ``generator_llm``) as a checked dict of
    :class:`LLMClientConfig` fields, or None when unset.

    Accepts the dict, an :class:`LLMClientConfig`, or JSON text (from the command line). A bad endpoint is refused
    here, before any episode starts.
    """
    if value is None:
        return None
    if isinstance(value, LLMClientConfig):
        return value.to_dict()
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as err:
            raise InvalidConfig(
                f"Expects {name} as JSON text of LLMClientConfig fields, e.g. "
                f'{{"base_url": "http://127.0.0.1:8000/v1", "model": "gemma-3-270m"}}; actual {value!r} ({err}).'
            ) from None
    if not isinstance(value, dict):
        raise InvalidConfig(
            f"Expects {name} to be a dict of LLMClientConfig fields (base_url, model, ...); actual "
            f"{type(value).__name__} {value!r}."
        )
    LLMClientConfig.from_kwargs(value)
    return value
