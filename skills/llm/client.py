"""One client for every LLM-backed part of envgym (teachers, the LLM data engine, skill discovery; STAT, SPaR and
LbT next), built on the ``openai`` package so that any OpenAI-compatible server works: OpenAI, ``vllm serve``,
llama.cpp's server (``envgym serve-teacher``), ``transformers serve``.

What it adds to the bare ``openai`` client:

- **Structured output.** :meth:`LLMClient.structured` asks for JSON matching a pydantic model and sends the schema
  the way the server supports it (see :data:`skills.llm.client_config.STRUCTURED_OUTPUTS`). Every reply is parsed
  and validated; an invalid one is counted (``usage.invalid_replies``), logged (:attr:`LLMClient.invalid_log`) and
  returned as a :class:`StructuredReply` without a value, never raised.
- **Cache and replay.** With a cache directory, each reply is stored under the SHA-256 of the full request (model,
  API, prompt, schema, sampling parameters; not the URL, so a cache replays against any server or none). A cached
  request is never sent again: an episode replays exactly without the server, and a resumed run never pays twice.
- **Accounting.** Requests, cache hits, prompt and completion tokens, latency and invalid replies
  (:class:`LLMUsage`), saved with a teacher's state so that totals survive a resume.
- **Errors.** A dead server, a time-out, an HTTP error or an unknown model raise :class:`LLMUnavailable` with
  one line naming the URL and what to check. Retries with exponential backoff are the ``openai`` client's own.

Example (needs a server; ``envgym serve-teacher`` starts one on this machine):

    >>> from pydantic import BaseModel
    >>> class Answer(BaseModel):
    ...     answer: int
    >>> client = LLMClient(base_url="http://127.0.0.1:8000/v1", model="gemma-3-270m")  # doctest: +SKIP
    >>> client.structured("What is 2+3? Reply as JSON.", Answer).value  # doctest: +SKIP
    Answer(answer=5)
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Annotated, Any, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ValidationError

from skills.errors import InvalidConfig, LLMUnavailable
from skills.llm.client_config import LLMClientConfig
from skills.storage import write_text_atomic

Model = TypeVar("Model", bound=BaseModel)
Item = TypeVar("Item")
Result = TypeVar("Result")

# Invalid replies kept for the log (the count has them all).
MAX_INVALID_LOG = 50
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


@dataclass
class LLMUsage:
    """What a client has spent: requests sent to the server and what they cost, replies served from the cache,
    and replies that did not parse or validate."""

    requests: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_seconds: float = 0.0
    invalid_replies: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def since(self, earlier: Mapping[str, Any]) -> dict[str, Any]:
        """The usage added after ``earlier`` (a :meth:`to_dict` taken before), e.g. one step's."""
        return {name: getattr(self, name) - earlier.get(name, 0) for name in self.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LLMUsage:
        known = {f.name for f in fields(cls)}
        return cls(**{name: value for name, value in data.items() if name in known})


@dataclass(frozen=True)
class StructuredReply(Generic[Model]):
    """A structured request's outcome: ``value`` (the validated model) or ``error`` (why the reply was invalid),
    and always the ``raw`` reply text."""

    value: Model | None
    raw: str
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.value is not None


@dataclass
class _Request:
    """The full logical request: what the cache key is made of."""

    api: str
    model: str
    prompt: str
    system: str | None
    schema: dict[str, Any] | None
    temperature: float
    max_tokens: int
    seed: int
    stop: list[str] | None = field(default=None)

    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()


class LLMClient:
    """A client for one OpenAI-compatible endpoint (see the module docstring).

    Args:
        config: an :class:`LLMClientConfig`, or a dict of its fields; keyword arguments override fields.
    """

    def __init__(self, config: LLMClientConfig | Mapping[str, Any] | None = None, **overrides: Any) -> None:
        if isinstance(config, LLMClientConfig):
            values = config.to_dict()
        elif config is None or isinstance(config, Mapping):
            values = dict(config or {})
        else:
            raise InvalidConfig(f"Expects an LLMClientConfig or a dict of its fields; actual {type(config).__name__}.")
        self.config = LLMClientConfig.from_kwargs({**values, **overrides})
        self.usage = LLMUsage()
        self.invalid_log: list[dict[str, Any]] = []
        self._cache_dir = Path(self.config.cache_dir) if self.config.cache_dir else None
        # The structured-output way the server accepted (resolved on first use when "auto").
        self._structured = None if self.config.structured_output == "auto" else self.config.structured_output
        self._lock = threading.Lock()
        self._openai: Any = None

    def __getstate__(self) -> dict[str, Any]:
        # Picklable and deep-copyable (envs are: Ray, snapshots, the checker): the HTTP client and the lock are
        # rebuilt on the other side, the cache and the counts travel.
        return {key: value for key, value in self.__dict__.items() if key not in ("_lock", "_openai")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._openai = None

    def close(self) -> None:
        """Close the HTTP connections (a later request opens new ones)."""
        if self._openai is not None:
            self._openai.close()
            self._openai = None

    # -- configuration ---------------------------------------------------------------------------------
    @property
    def cache_dir(self) -> Path | None:
        return self._cache_dir

    def use_cache_dir(self, path: str | Path) -> None:
        """Cache replies in ``path`` unless the config named a cache directory (a run's ``llm_cache``)."""
        if self.config.cache_dir is None:
            self._cache_dir = Path(path)

    def state_dict(self) -> dict[str, Any]:
        """Usage totals and the invalid-reply log (JSON types), so a resumed run keeps counting from here."""
        return {"usage": self.usage.to_dict(), "invalid_log": list(self.invalid_log)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if not isinstance(state, Mapping) or not isinstance(state.get("usage"), Mapping):
            raise InvalidConfig(f"Expects an LLM client state with 'usage'; actual {state!r:.200}.")
        self.usage = LLMUsage.from_dict(state["usage"])
        self.invalid_log = list(state.get("invalid_log", []))

    # -- requests --------------------------------------------------------------------------------------
    def complete(
        self,
        prompt: str,
        *,
        system: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        seed: int | None = None,
        stop: list[str] | None = None,
        model: str | None = None,
    ) -> str:
        """The reply text to ``prompt`` (a user message for the chat API, the whole prompt for completions);
        ``model`` overrides the configured one for this request (e.g. a LoRA adapter the server loaded)."""
        return self._reply(self._request(prompt, system, None, temperature, max_tokens, seed, stop, model))

    def structured(
        self,
        prompt: str,
        schema: type[Model],
        *,
        system: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        seed: int | None = None,
        stop: list[str] | None = None,
    ) -> StructuredReply[Model]:
        """Ask for JSON matching ``schema``; the reply is parsed and validated, an invalid one counted and logged."""
        json_schema = schema.model_json_schema()
        request = self._request(prompt, system, json_schema, temperature, max_tokens, seed, stop)
        raw = self._reply(request)
        try:
            value = schema.model_validate(parse_json_reply(raw))
        except (ValueError, ValidationError) as err:
            error = _short_error(err)
            with self._lock:
                self.usage.invalid_replies += 1
                if len(self.invalid_log) < MAX_INVALID_LOG:
                    self.invalid_log.append({"schema": schema.__name__, "error": error, "reply": raw[:500]})
            return StructuredReply(None, raw, error)
        return StructuredReply(value, raw)

    def map(self, fn: Callable[[Item], Result], items: Iterable[Item]) -> list[Result]:
        """``[fn(item) for item in items]`` with at most ``config.concurrency`` requests in flight; in order."""
        items = list(items)
        if self.config.concurrency == 1 or len(items) <= 1:
            return [fn(item) for item in items]
        with ThreadPoolExecutor(max_workers=self.config.concurrency) as pool:
            return list(pool.map(fn, items))

    # -- internals -------------------------------------------------------------------------------------
    def _request(
        self,
        prompt: str,
        system: str | None,
        schema: dict[str, Any] | None,
        temperature: float | None,
        max_tokens: int | None,
        seed: int | None,
        stop: list[str] | None,
        model: str | None = None,
    ) -> _Request:
        if not isinstance(prompt, str):
            raise InvalidConfig(f"Expects the prompt to be a string; actual {type(prompt).__name__}.")
        return _Request(
            api=self.config.api,
            model=model or self.config.model,
            prompt=prompt,
            system=system,
            schema=schema,
            temperature=float(self.config.temperature if temperature is None else temperature),
            max_tokens=int(max_tokens or self.config.max_tokens),
            seed=int(self.config.seed if seed is None else seed),
            stop=list(stop) if stop else None,
        )

    def _reply(self, request: _Request) -> str:
        key = request.key()
        cached = self._cache_get(key)
        if cached is not None:
            with self._lock:
                self.usage.cache_hits += 1
            return cached
        start = time.perf_counter()
        text, prompt_tokens, completion_tokens = self._send(request)
        with self._lock:
            self.usage.requests += 1
            self.usage.prompt_tokens += prompt_tokens
            self.usage.completion_tokens += completion_tokens
            self.usage.latency_seconds += time.perf_counter() - start
        self._cache_put(key, request, text)
        return text

    def _send(self, request: _Request) -> tuple[str, int, int]:
        import openai

        ways = [None] if request.schema is None else self._structured_ways()
        for position, way in enumerate(ways):
            try:
                response = self._call(request, way)
            except (openai.BadRequestError, openai.UnprocessableEntityError, openai.InternalServerError) as err:
                if position + 1 < len(ways):  # "auto": the server refused this way of sending a schema
                    continue
                raise self._unavailable(err) from None
            except openai.OpenAIError as err:
                raise self._unavailable(err) from None
            if request.schema is not None and self._structured is None:
                self._structured = way
            choice = response.choices[0] if response.choices else None
            if choice is None:
                text = ""
            elif request.api == "chat":
                text = choice.message.content or ""
            else:
                text = choice.text or ""
            usage = getattr(response, "usage", None)
            return text, int(getattr(usage, "prompt_tokens", 0) or 0), int(getattr(usage, "completion_tokens", 0) or 0)
        raise AssertionError("unreachable: the last way raises")  # pragma: no cover

    def _structured_ways(self) -> list[str]:
        if self._structured is not None:
            return [self._structured]
        if self.config.api == "completions":
            # OpenAI's completions API has no response_format, and servers ignore unknown fields instead of
            # refusing them (llama.cpp does), so "auto" cannot tell whether a schema was honoured: prompt + parse.
            return ["prompt"]
        return ["json_schema", "json_object", "prompt"]

    def _call(self, request: _Request, way: str | None) -> Any:
        client = self._client()
        prompt = request.prompt
        extra: dict[str, Any] = {}
        response_format: dict[str, Any] | None = None
        if way == "json_schema":
            response_format = {
                "type": "json_schema",
                "json_schema": {"name": request.schema.get("title", "reply"), "schema": request.schema},
            }
        elif way == "json_object":
            response_format = {"type": "json_object", "schema": request.schema}
        elif way == "prompt":
            prompt = (
                f"{prompt}\n\nReply with one JSON object that matches this JSON schema, and nothing else:\n"
                f"{json.dumps(request.schema)}\n"
            )
        common = {
            "model": request.model,
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
            "seed": request.seed,
            "stop": request.stop,
            "timeout": self.config.timeout,
        }
        if request.api == "chat":
            messages = [{"role": "system", "content": request.system}] if request.system else []
            messages.append({"role": "user", "content": prompt})
            if response_format is not None:
                common["response_format"] = response_format
            return client.chat.completions.create(messages=messages, **common)
        if request.system:
            prompt = f"{request.system}\n\n{prompt}"
        if response_format is not None:  # not in OpenAI's completions API; llama.cpp and vLLM read it
            extra["response_format"] = response_format
        return client.completions.create(prompt=prompt, extra_body=extra or None, **common)

    def _client(self) -> Any:
        if self._openai is None:
            import openai

            self._openai = openai.OpenAI(
                base_url=self.config.base_url,
                # Local servers take any key; OpenAI's own needs the real one from the environment.
                api_key=os.environ.get(self.config.api_key_env) or "not-needed",
                timeout=self.config.timeout,
                max_retries=self.config.max_retries,
            )
        return self._openai

    def _unavailable(self, err: Exception) -> LLMUnavailable:
        import openai

        url, model = self.config.base_url, self.config.model
        if isinstance(err, openai.APITimeoutError):
            what = (
                f"The LLM server at {url} did not answer within {self.config.timeout:g} s. Check that it is not "
                "overloaded, or raise the timeout (--teacher-timeout)."
            )
        elif isinstance(err, openai.APIConnectionError):
            what = (
                f"Cannot reach an LLM server at {url}. Check that the server is running (envgym serve-teacher "
                "starts a local one) and that the base URL, including /v1, is right (--teacher-base-url)."
            )
        elif isinstance(err, openai.NotFoundError):
            what = (
                f"The LLM server at {url} answered 404 for model {model!r}: check the model name "
                f"(--teacher-model; GET {url.rstrip('/')}/models lists what it serves) and the base URL."
            )
        elif isinstance(err, (openai.AuthenticationError, openai.PermissionDeniedError)):
            what = (
                f"The LLM server at {url} refused the API key (HTTP {err.status_code}): set "
                f"${self.config.api_key_env} to a valid key."
            )
        elif isinstance(err, openai.APIStatusError):
            what = f"The LLM server at {url} answered HTTP {err.status_code}: {_short_error(err)}"
        else:
            what = f"The LLM request to {url} failed: {_short_error(err)}"
        return LLMUnavailable(what)

    def _cache_path(self, key: str) -> Path | None:
        return None if self._cache_dir is None else self._cache_dir / key[:2] / f"{key}.json"

    def _cache_get(self, key: str) -> str | None:
        path = self._cache_path(key)
        if path is None or not path.is_file():
            return None
        try:
            reply = json.loads(path.read_text())["reply"]
        except (OSError, ValueError, KeyError, TypeError):
            return None  # a damaged entry (a kill mid-write cannot make one: writes are atomic) is asked again
        return reply if isinstance(reply, str) else None

    def _cache_put(self, key: str, request: _Request, reply: str) -> None:
        path = self._cache_path(key)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, json.dumps({"request": asdict(request), "reply": reply}))


def bounded_text(limit: int) -> Any:
    """A pydantic field type: non-empty text of at most ``limit`` characters, checked *after* parsing.

    A ``maxLength`` in the JSON schema would be sent to the server, and llama.cpp unrolls it into one nested
    optional grammar rule per character: at 2,000 its grammar parser gave up and the server crashed (measured with
    llama-cpp-python 0.3.36). A reply over the limit is an invalid reply like any other.
    """

    def check(text: str) -> str:
        if not text.strip():
            raise ValueError("Expects non-empty text")
        if len(text) > limit:
            raise ValueError(f"Expects at most {limit} characters; actual {len(text)}")
        return text

    return Annotated[str, AfterValidator(check)]


def parse_json_reply(text: str) -> Any:
    """The JSON value in an LLM reply: the whole text, else a fenced block, else the outermost ``{...}``/``[...]``.

    >>> parse_json_reply('Sure! ```json\\n{"a": 1}\\n```')
    {'a': 1}
    >>> parse_json_reply('{"a": [1, 2')
    Traceback (most recent call last):
    ...
    ValueError: Expects a JSON object in the reply; found none that parses in '{"a": [1, 2'.
    """
    candidates = [text.strip()]
    candidates += [block.strip() for block in _FENCE.findall(text)]
    for open_, close in (("{", "}"), ("[", "]")):
        start, end = text.find(open_), text.rfind(close)
        if 0 <= start < end:
            candidates.append(text[start : end + 1])
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except ValueError:
            continue
    raise ValueError(f"Expects a JSON object in the reply; found none that parses in {text[:200]!r}.")


def _short_error(err: Exception) -> str:
    if isinstance(err, ValidationError):
        first = err.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ())) or "reply"
        return f"{err.error_count()} validation error(s), first at {where}: {first.get('msg')}"
    message = getattr(err, "message", None) or str(err)
    return " ".join(str(message).split())[:300]
