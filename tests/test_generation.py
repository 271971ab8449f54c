"""The generation seam: in-process transformers (default), an OpenAI-compatible server with per-step LoRA
adapters (against a scripted server for the adapter protocol, ``transformers serve`` of the student itself, and the
real local Gemma server in test_serve_teacher), and in-process vLLM (its request building and adapter bookkeeping
on CPU; the rest on a GPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
import torch
from scripted_llm_server import ScriptedLLMServer

from skills.arithmetic import ArithmeticTask
from skills.errors import InvalidConfig
from students import HFStudent, HFStudentConfig, default_student_dir
from students.generation import AdapterBook, lora_request_args, sampling_args

LORA = {"lora": True, "lora_r": 4, "num_threads": 1, "max_new_tokens": 4}


def test_a_server_generator_loads_each_trained_adapter_and_asks_with_its_name(tmp_path):
    def reply(request):
        return "ok" if "lora_name" in request else " 46"

    with ScriptedLLMServer(reply) as server:
        llm = {"base_url": server.base_url, "model": "base", "max_retries": 0, "concurrency": 1}
        student = HFStudent(default_student_dir(), HFStudentConfig(**LORA, generator="openai", generator_llm=llm))
        assert student.answer(["12+34=", "1+2="]) == ["46", "46"]
        student.answer(["3+4="])  # weights unchanged: the same adapter, no new load
        student.train(ArithmeticTask().generate("add_carry", 8, np.random.default_rng(0)), seed=0)
        student.answer(["5+6="])
    loads = [r for r in server.requests if "lora_path" in r]
    unloads = [r for r in server.requests if "lora_name" in r and "lora_path" not in r]
    completions = [r for r in server.requests if "prompt" in r]
    assert [r["lora_name"] for r in loads] == ["envgym-1", "envgym-2"]
    assert [r["lora_name"] for r in unloads] == ["envgym-1"]
    assert [r["model"] for r in completions] == ["envgym-1", "envgym-1", "envgym-1", "envgym-2"]
    assert completions[0]["prompt"] == student.format_prompt("12+34=") and completions[0]["temperature"] == 0.0
    assert not (student.work_dir / "adapters" / "adapter-1").exists()  # retired once envgym-2 was live
    assert (student.work_dir / "adapters" / "adapter-2" / "adapter_config.json").is_file()


@pytest.fixture(scope="module")
def served_default_student(tmp_path_factory):
    """``transformers serve`` of the shipped default student on a free loopback port (a real OpenAI-compatible
    server: /v1/completions, greedy)."""
    from envgym.serve import free_port

    model_dir = str(default_student_dir())
    port = free_port()
    hf_home = tmp_path_factory.mktemp("serve-hf")
    (hf_home / "hub").mkdir()  # /v1/models needs the hub cache to exist
    env = {**os.environ, "HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "transformers.cli.transformers", "serve", model_dir]
    command += ["--host", "127.0.0.1", "--port", str(port), "--device", "cpu"]
    log = tmp_path_factory.mktemp("serve-log") / "serve.log"
    with log.open("w") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"transformers serve did not start:\n{log.read_text()[-2000:]}")
                time.sleep(0.5)
        yield {"base_url": f"http://127.0.0.1:{port}/v1", "model": model_dir}
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow
def test_a_student_answers_through_transformers_serve_as_it_does_in_process(served_default_student):
    task, rng = ArithmeticTask(), np.random.default_rng(3)
    questions = [e.question for skill in task.skills for e in task.generate(skill.name, 3, rng)]
    local = HFStudent(default_student_dir(), HFStudentConfig(num_threads=1))
    llm = {**served_default_student, "max_retries": 0, "concurrency": 2}
    served = HFStudent(
        default_student_dir(),
        HFStudentConfig(num_threads=1, generator="openai", generator_sync="none", generator_llm=llm),
    )
    expected = local.answer(questions)
    assert len(set(expected)) > 5  # a student whose answers differ, so agreement means something
    assert served.answer(questions) == expected
    assert served.generator.client.usage.requests == len(questions)


def test_adapter_versions_follow_the_weights(tmp_path):
    student = HFStudent(default_student_dir(), HFStudentConfig(**LORA))
    book = AdapterBook(tmp_path)
    first, previous = book.sync(student)
    assert (first.name, first.lora_id, previous) == ("envgym-1", 1, None)
    assert book.sync(student) == (first, None)  # nothing changed
    snapshot = student.snapshot()
    student.restore(snapshot)  # restoring counts as a change: the server must get these weights
    second, previous = book.sync(student)
    assert (second.lora_id, previous) == (2, first)
    assert lora_request_args(second) == ("envgym-2", 2, str(tmp_path / "adapter-2"))
    assert sampling_args(student) == {"temperature": 0.0, "max_tokens": 4, "stop": [student.tokenizer.eos_token]}


def test_server_generators_refuse_full_fine_tuning_with_the_reason():
    with pytest.raises(InvalidConfig, match="lora=True with generator='openai'"):
        HFStudentConfig(generator="openai", generator_llm={"base_url": "http://127.0.0.1:9/v1"})
    with pytest.raises(InvalidConfig, match="generator_llm"):
        HFStudentConfig(lora=True, generator="openai")
    with pytest.raises(InvalidConfig, match="generator to be one of"):
        HFStudentConfig(generator="tgi")
    config = HFStudentConfig(generator="openai", generator_sync="none", generator_llm=json.dumps({"model": "m"}))
    assert config.generator_llm == {"model": "m"}


def test_the_vllm_generator_without_vllm_says_where_it_runs():
    try:
        import vllm  # noqa: F401
    except ImportError:
        with pytest.raises(InvalidConfig, match="separate GPU environment"):
            HFStudent(default_student_dir(), HFStudentConfig(**LORA, generator="vllm"))
    else:
        pytest.skip("vLLM is installed here")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_vllm_generator_answers_like_transformers_on_a_gpu():
    pytest.importorskip("vllm", reason="needs the [vllm] extra (a separate GPU environment)")
    questions = [ex.question for ex in ArithmeticTask().generate("add_no_carry", 20, np.random.default_rng(0))]
    local = HFStudent(default_student_dir(), HFStudentConfig(**LORA))
    served = HFStudent(default_student_dir(), HFStudentConfig(**LORA, generator="vllm"))
    assert served.answer(questions) == local.answer(questions)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_student_trains_and_answers_on_the_gpu():
    student = HFStudent(default_student_dir(), HFStudentConfig(num_threads=1))
    student.train(ArithmeticTask().generate("add_carry", 64, np.random.default_rng(0)), seed=0)
    assert next(student.model.parameters()).device.type == "cuda"
    assert len(student.answer(["12+34=", "5+6="])) == 2  # inputs follow the model to the GPU
