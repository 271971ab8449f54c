"""The one LLM client: structured output, invalid replies, errors, cache replay, accounting (against real HTTP)."""

from __future__ import annotations

import json
import threading
import time

import pytest
from pydantic import BaseModel
from scripted_llm_server import ScriptedLLMServer, last_prompt

from skills.errors import InvalidConfig, LLMUnavailable
from skills.llm import LLMClient, LLMClientConfig, parse_json_reply


class Answer(BaseModel):
    answer: int


def _client(server: ScriptedLLMServer, **kwargs) -> LLMClient:
    return LLMClient(base_url=server.base_url, model="scripted", max_retries=0, **kwargs)


def test_auto_structured_output_falls_back_to_llama_cpp_json_object_and_remembers_it():
    def reply(request):
        if request.get("response_format", {}).get("type") == "json_schema":
            return 500, "json_schema is not supported"  # what llama-cpp-python answers
        return json.dumps({"answer": 5})

    with ScriptedLLMServer(reply) as server:
        client = _client(server)
        assert client.structured("2+3?", Answer).value == Answer(answer=5)
        assert client.structured("2+4?", Answer).value == Answer(answer=5)
    kinds = [request.get("response_format", {}).get("type") for request in server.requests]
    # First request: json_schema refused, json_object accepted with the schema; the second goes straight there.
    assert kinds == ["json_schema", "json_object", "json_object"]
    assert server.requests[1]["response_format"]["schema"] == Answer.model_json_schema()
    assert client.usage.requests == 2 and client.usage.invalid_replies == 0


def test_prompt_mode_puts_the_schema_in_the_prompt_and_parses_fenced_json():
    with ScriptedLLMServer(lambda request: 'Here you go:\n```json\n{"answer": 9}\n```') as server:
        reply = _client(server, structured_output="prompt").structured("4+5?", Answer)
    assert reply.value == Answer(answer=9)
    assert "response_format" not in server.requests[0]
    assert '"answer"' in last_prompt(server.requests[0])  # the schema travelled in the prompt


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ('{"answer": 5', "parses"),  # cut off at max_tokens
        ('{"answer": "five"}', "valid integer"),  # wrong type
        ("I think it is 5.", "parses"),  # no JSON at all
        ('{"result": 5}', "answer"),  # missing field
    ],
)
def test_invalid_replies_are_counted_and_logged_never_raised(raw, why):
    with ScriptedLLMServer(lambda request: raw) as server:
        client = _client(server, structured_output="json_object")
        reply = client.structured("2+3?", Answer)
    assert reply.value is None and not reply.ok and reply.raw == raw
    assert why in reply.error
    assert client.usage.invalid_replies == 1 and client.usage.requests == 1
    assert client.invalid_log == [{"schema": "Answer", "error": reply.error, "reply": raw}]


def test_a_dead_server_names_the_url_and_what_to_check():
    client = LLMClient(base_url="http://127.0.0.1:9/v1", model="m", max_retries=0)
    with pytest.raises(LLMUnavailable, match=r"Cannot reach an LLM server at http://127\.0\.0\.1:9/v1.*running"):
        client.complete("hello")
    assert isinstance(LLMUnavailable("x"), ConnectionError)


def test_a_time_out_is_a_clear_error_after_the_timeout():
    with ScriptedLLMServer(lambda request: "late", delay=3.0) as server:
        client = _client(server, timeout=0.5)
        start = time.perf_counter()
        with pytest.raises(LLMUnavailable, match=r"did not answer within 0\.5 s"):
            client.complete("hello")
    assert time.perf_counter() - start < 2.5


@pytest.mark.parametrize(
    ("status", "match"),
    [(404, r"404 for model 'scripted'.*--teacher-model"), (401, r"refused the API key.*OPENAI_API_KEY"), (503, "503")],
)
def test_http_errors_become_one_line_messages(status, match):
    with (
        ScriptedLLMServer(lambda request: (status, "scripted failure")) as server,
        pytest.raises(LLMUnavailable, match=match) as caught,
    ):
        _client(server).complete("hello")
    assert "\n" not in str(caught.value)


def test_cache_replays_exactly_without_the_server_and_never_pays_twice(tmp_path):
    calls = iter(range(100))

    def reply(request):
        return json.dumps({"answer": next(calls)})  # a different reply each time it is really asked

    with ScriptedLLMServer(reply) as server:
        first = _client(server, cache_dir=str(tmp_path), structured_output="json_object")
        replies = [first.structured(f"q{i}", Answer).value for i in range(3)]
        again = [first.structured(f"q{i}", Answer).value for i in range(3)]
    assert replies == again == [Answer(answer=0), Answer(answer=1), Answer(answer=2)]
    assert first.usage.requests == 3 and first.usage.cache_hits == 3 and len(server.requests) == 3

    # The server is gone: a new client on the same cache replays the same replies, at another URL.
    offline = LLMClient(base_url="http://127.0.0.1:9/v1", model="scripted", cache_dir=str(tmp_path), max_retries=0)
    assert [offline.structured(f"q{i}", Answer).value for i in range(3)] == replies
    assert offline.usage.requests == 0 and offline.usage.cache_hits == 3
    # A request it never made is not in the cache: the dead server is reported, not a made-up reply.
    with pytest.raises(LLMUnavailable):
        offline.structured("q3", Answer)


def test_cache_key_is_the_full_request(tmp_path):
    with ScriptedLLMServer(lambda request: json.dumps({"answer": len(server.requests)})) as server:
        client = _client(server, cache_dir=str(tmp_path), structured_output="json_object")
        client.structured("q", Answer)
        client.structured("q", Answer, seed=1)  # another sample: a new request
        client.structured("q", Answer, temperature=0.7)
        client.complete("q")  # same prompt, no schema
        client.structured("q", Answer)  # the first again: cached
    assert len(server.requests) == 4 and client.usage.cache_hits == 1


def test_completions_api_sends_a_plain_prompt_for_base_models():
    with ScriptedLLMServer(lambda request: " 85\n") as server:
        text = _client(server, api="completions").complete("Q: 47+38=\nA:", system="Few-shot:", stop=["\n\n"])
    assert text == " 85\n"
    request = server.requests[0]
    assert "messages" not in request and request["prompt"] == "Few-shot:\n\nQ: 47+38=\nA:"
    assert request["stop"] == ["\n\n"] and request["temperature"] == 0.0 and request["seed"] == 0


def test_map_keeps_order_and_bounds_concurrency():
    in_flight, most = 0, 0
    lock = threading.Lock()

    def reply(request):
        nonlocal in_flight, most
        with lock:
            in_flight += 1
            most = max(most, in_flight)
        time.sleep(0.05)
        with lock:
            in_flight -= 1
        return last_prompt(request).upper()

    with ScriptedLLMServer(reply) as server:
        client = _client(server, concurrency=3)
        texts = client.map(client.complete, [f"q{i}" for i in range(9)])
    assert texts == [f"Q{i}" for i in range(9)]
    assert 2 <= most <= 3
    assert client.usage.requests == 9 and client.usage.prompt_tokens == 90


def test_usage_state_round_trips_so_a_resume_keeps_counting():
    client = LLMClient(base_url="http://127.0.0.1:9/v1")
    client.usage.requests, client.usage.invalid_replies = 4, 1
    client.invalid_log.append({"schema": "Answer", "error": "e", "reply": "r"})
    other = LLMClient(base_url="http://127.0.0.1:9/v1")
    other.load_state_dict(json.loads(json.dumps(client.state_dict())))
    assert other.usage == client.usage and other.invalid_log == client.invalid_log
    assert other.usage.since({"requests": 3})["requests"] == 1
    with pytest.raises(InvalidConfig, match="usage"):
        other.load_state_dict({"bogus": 1})


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("base_url", "127.0.0.1:8000", "http://"),
        ("api", "chats", "api"),
        ("structured_output", "grammar", "structured_output"),
        ("timeout", 0, "timeout"),
        ("concurrency", 0, "concurrency"),
        ("temperature", float("nan"), "temperature"),
    ],
)
def test_bad_config_is_refused_with_what_was_expected(field, value, match):
    with pytest.raises(InvalidConfig, match=match):
        LLMClientConfig(**{field: value})


def test_unknown_config_field_gets_a_did_you_mean():
    with pytest.raises(InvalidConfig, match="Did you mean 'base_url'"):
        LLMClient(base_ur="http://x")


def test_parse_json_reply_finds_the_json_value():
    assert parse_json_reply('noise {"a": {"b": 1}} trailing') == {"a": {"b": 1}}
    assert parse_json_reply("[1, 2]") == [1, 2]
    with pytest.raises(ValueError, match="Expects a JSON object"):
        parse_json_reply('{"a": ')


def test_a_client_pickles_and_deep_copies_with_its_counts_and_cache(tmp_path):
    import copy
    import pickle

    with ScriptedLLMServer(lambda request: "hi") as server:
        client = _client(server, cache_dir=str(tmp_path))
        client.complete("q")
        for index, clone in enumerate((pickle.loads(pickle.dumps(client)), copy.deepcopy(client))):
            assert clone.usage == client.usage and clone.cache_dir == client.cache_dir
            assert clone.complete("q") == "hi" and clone.usage.cache_hits == 1
            assert clone.complete(f"new {index}") == "hi" and clone.usage.requests == 2  # its own HTTP client works


def test_an_env_with_the_llm_data_engine_passes_the_checker_contract_pieces():
    import copy

    import gymnasium as gym

    import envgym  # noqa: F401

    env = gym.make(
        "envgym/SkillList-v0",
        n_val=5,
        n_test=5,
        data_engine="llm",
        data_engine_llm={"base_url": "http://127.0.0.1:9/v1"},
    )
    clone = copy.deepcopy(env.unwrapped)
    assert clone.data_engine.client.config == env.unwrapped.data_engine.client.config
