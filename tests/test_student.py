import hashlib

import numpy as np
import pytest
import torch

from skills import ArithmeticTask
from skills.errors import InvalidConfig
from students import DefaultStudentConfig, HFStudent, HFStudentConfig, build_default_student, default_student_dir

TINY = DefaultStudentConfig(steps=40, warmup_steps=5)
TASK = ArithmeticTask()


@pytest.fixture(scope="module")
def tiny_dir():
    return default_student_dir(TINY, progress=False)


def _sha(path):
    return hashlib.sha256((path / "model.safetensors").read_bytes()).hexdigest()


@pytest.mark.slow
def test_build_is_deterministic_per_seed_and_cached(tmp_path, tiny_dir, monkeypatch):
    again = build_default_student(TINY, tmp_path / "again", progress=False)
    other = build_default_student(
        DefaultStudentConfig(steps=40, warmup_steps=5, seed=1), tmp_path / "o", progress=False
    )
    assert _sha(again) == _sha(tiny_dir)
    assert _sha(other) != _sha(tiny_dir)
    # The second call reuses the cache: nothing is built (a build would raise here) and the files are untouched.
    import students.default_student as default_student

    def no_build(*args, **kwargs):
        raise AssertionError("default_student_dir rebuilt a cached student")

    monkeypatch.setattr(default_student, "build_default_student", no_build)
    before = (tiny_dir / "model.safetensors").stat()
    assert default_student_dir(TINY, progress=False) == tiny_dir
    after = (tiny_dir / "model.safetensors").stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


@pytest.mark.slow
def test_a_build_records_the_machine_and_the_profile_a_rebuild_is_held_to(tiny_dir):
    import json

    import torch

    from students.default_student import BUILD_FILE, skill_profile

    build = json.loads((tiny_dir / BUILD_FILE).read_text())
    machine = build["built_on"]
    assert machine["torch"] == torch.__version__ and machine["threads"] >= 1
    assert machine["cpu"] and machine["arch"] and machine["isa"] == torch.backends.cpu.get_cpu_capability()
    assert set(build["test_profile"]) == {s.name for s in TASK.skills}
    again = skill_profile(tiny_dir, threads=machine["threads"])
    assert build["test_profile"] == again  # what the weights do, measured again: the same


def test_shipped_default_student_matches_default_config_and_knows_exactly_the_bands_it_was_taught(default_dir):
    import json

    from envgym.skill_list_config import SkillListConfig
    from skills import TaskSplits
    from students.default_student import BUILD_FILE, SHIPPED_DIR

    assert default_dir == SHIPPED_DIR
    build = json.loads((default_dir / BUILD_FILE).read_text())
    assert _sha(default_dir) == build["weights_sha256"]  # the shipped weights are the ones the record describes
    student = HFStudent(default_dir, HFStudentConfig(eval_batch_size=400))
    assert 1_000_000 <= student.num_parameters() <= 4_000_000
    # Measured on the environment's own test questions: held out, so never in the student's curriculum.
    config = SkillListConfig()
    splits = TaskSplits.build(TASK, n_val=config.n_val, n_test=config.n_test, split_seed=config.split_seed)
    questions = splits.all_questions("test")
    answers = student.answer([e.question for e in questions])
    taught = {skill: (low, high) for skill, low, high in DefaultStudentConfig().skill_bands}
    shares = dict(DefaultStudentConfig().skill_shares)
    covered: list[float] = []
    unseen: dict[str, list[float]] = {}
    for example, answer in zip(questions, answers, strict=True):
        low, high = taught.get(example.skill, (-np.inf, np.inf))  # a skill without a band is taught whole
        score = TASK.score(example, answer)
        if shares.get(example.skill, 0) > 0 and low <= TASK.difficulty(example) <= high:
            covered.append(score)
        else:
            unseen.setdefault(example.skill, []).append(score)
    # The starting profile is the curriculum's coverage: what was taught is learned, what was not is not.
    assert np.mean(covered) > 0.95
    assert set(unseen) == {"add_carry", "add_3d_carry", "sum3", "sub_borrow", "mul_1d"}
    assert all(np.mean(scores) < 0.1 for scores in unseen.values()), {s: np.mean(v) for s, v in unseen.items()}
    profile = build["test_profile"]
    assert 0.3 < profile["add_3d_carry"] < 0.6 and 0.1 < profile["sum3"] < 0.25  # part-known: bands missing


def test_default_student_config_refuses_bad_skill_shares_and_round_trips_its_saved_form():
    import json
    from dataclasses import asdict

    with pytest.raises(InvalidConfig, match="Expects skill_shares"):
        DefaultStudentConfig(skill_shares=(("add_carr", 1.0),))
    with pytest.raises(InvalidConfig, match="positive total"):
        DefaultStudentConfig(skill_shares=(("add_carry", 0.0),))
    for bands in ((("add_carry", 2, 1),), (("add_carry", 1, 1), ("add_carry", 2, 2)), (("sum4", 0, 0),)):
        with pytest.raises(InvalidConfig, match="Expects skill_bands"):
            DefaultStudentConfig(skill_bands=bands)
    config = DefaultStudentConfig(
        skill_shares=(("add_carry", 0.5), ("compare", 0.5)), skill_bands=(("add_carry", 2, 2),), steps=7
    )
    saved = json.loads(json.dumps(asdict(config)))
    assert DefaultStudentConfig.from_dict(saved) == config
    with pytest.raises(InvalidConfig, match="Did you mean 'steps'"):
        DefaultStudentConfig.from_dict({**saved, "stepz": 1})


@pytest.mark.slow
def test_linear_schedule_warms_up_then_decays_to_zero_across_chunks(tiny_dir):
    student = HFStudent(tiny_dir, HFStudentConfig(lr_schedule="linear", warmup_ratio=0.25))
    factors = [student._lr_factor(k, offset=0, total=8) for k in range(9)]
    assert factors == pytest.approx([0.5, 1.0, 1.0, 5 / 6, 4 / 6, 3 / 6, 2 / 6, 1 / 6, 0.0])
    assert student._lr_factor(1, offset=3, total=8) == pytest.approx(4 / 6)  # a later chunk continues the schedule
    constant = HFStudent(tiny_dir, HFStudentConfig(lr_schedule="constant"))
    assert constant._lr_factor(5, offset=0, total=8) == 1.0
    # A chunked call (3 chunks of 16) ends where one schedule over all its steps ends: at zero.
    chunked = HFStudent(tiny_dir, HFStudentConfig(train_chunk_size=16, batch_size=8, learning_rate=1e-3))
    chunked.train(TASK.generate("add_carry", 40, np.random.default_rng(0)), seed=0)
    assert chunked.optimizer.param_groups[0]["lr"] == 0.0
    with pytest.raises(InvalidConfig, match="lr_schedule"):
        HFStudentConfig(lr_schedule="cosine")
    with pytest.raises(InvalidConfig, match="warmup_ratio"):
        HFStudentConfig(warmup_ratio=1.0)


def test_batched_answers_equal_one_at_a_time(default_dir):
    # The shipped student, whose answers differ from question to question (a 40-step one says "111" to most).
    student = HFStudent(default_dir, HFStudentConfig(eval_batch_size=64))
    questions = [e.question for e in TASK.generate("add_no_carry", 40, np.random.default_rng(0))]
    questions += [e.question for e in TASK.generate("sum3", 40, np.random.default_rng(0))]  # mixed lengths
    questions += [e.question for e in TASK.generate("compare", 20, np.random.default_rng(0))]
    batched = student.answer(questions)
    single = [student.answer([q])[0] for q in questions]
    assert len(set(single)) > 50 and {len(q) for q in questions} != {len(questions[0])}
    assert batched == single


@pytest.mark.slow
def test_training_is_deterministic_and_save_load_resumes_exactly(tmp_path, tiny_dir):
    data = TASK.generate("sub_borrow", 64, np.random.default_rng(0))
    more = TASK.generate("sub_borrow", 64, np.random.default_rng(1))

    straight = HFStudent(tiny_dir)
    straight.train(data, seed=1)
    straight.train(more, seed=2)

    resumed = HFStudent(tiny_dir)
    resumed.train(data, seed=1)
    resumed.save(tmp_path / "ckpt")
    fresh = HFStudent(tiny_dir)
    fresh.load(tmp_path / "ckpt")
    fresh.train(more, seed=2)
    for (name, a), (_, b) in zip(straight.model.named_parameters(), fresh.model.named_parameters(), strict=True):
        assert torch.equal(a, b), name


def test_training_moves_only_answer_loss_down(tiny_dir):
    student = HFStudent(tiny_dir, HFStudentConfig(learning_rate=1e-3))
    data = TASK.generate("mul_1d", 128, np.random.default_rng(0))
    first = student.train(data, seed=0)["loss"]
    second = student.train(data, seed=0)["loss"]
    assert second < first


def test_only_answer_tokens_carry_labels(tiny_dir):
    """The loss sees the answer (and EOS) only: every prompt and padding position is labelled -100."""
    from students.training import IGNORE_INDEX, PromptCompletion, _PadCollator, _TokenizedPairs

    student = HFStudent(tiny_dir, HFStudentConfig())
    tokenizer = student.tokenizer
    examples = TASK.generate("sum3", 3, np.random.default_rng(0)) + TASK.generate("mul_1d", 3, np.random.default_rng(0))
    pairs = [PromptCompletion(student.format_prompt(e.question), student.format_completion(e.answer)) for e in examples]
    rows = _TokenizedPairs(pairs, tokenizer, student.config.max_length)
    batch = _PadCollator(tokenizer.pad_token_id)([rows[i] for i in range(len(rows))])
    assert len({int(m.sum()) for m in batch["attention_mask"]}) > 1  # the batch really is padded
    for i, (pair, example) in enumerate(zip(pairs, examples, strict=True)):
        n_prompt = len(tokenizer(pair.prompt, add_special_tokens=True)["input_ids"])
        labels, ids, mask = batch["labels"][i], batch["input_ids"][i], batch["attention_mask"][i]
        assert (labels[:n_prompt] == IGNORE_INDEX).all()  # no prompt token is trained on
        assert (labels[mask == 0] == IGNORE_INDEX).all()  # nor padding
        supervised = labels != IGNORE_INDEX
        assert torch.equal(labels[supervised], ids[supervised])
        assert tokenizer.decode(labels[supervised]).replace(tokenizer.eos_token, "").strip() == example.answer


def test_lora_trains_only_adapters(tmp_path, tiny_dir):
    student = HFStudent(tiny_dir, HFStudentConfig(lora=True, lora_r=4, learning_rate=1e-3))
    trainable = [n for n, p in student.model.named_parameters() if p.requires_grad]
    torch.manual_seed(123)  # the global RNG must not leak into the adapters' initialisation
    again = HFStudent(tiny_dir, HFStudentConfig(lora=True, lora_r=4, learning_rate=1e-3))
    assert all(torch.equal(a, b) for a, b in zip(student.model.parameters(), again.model.parameters(), strict=True))
    assert trainable and all("lora_" in n for n in trainable)
    frozen_before = {n: p.clone() for n, p in student.model.named_parameters() if not p.requires_grad}
    student.train(TASK.generate("sub_borrow", 64, np.random.default_rng(0)), seed=0)
    for name, param in student.model.named_parameters():
        if name in frozen_before:
            assert torch.equal(param, frozen_before[name])
    student.save(tmp_path / "lora")
    other = HFStudent(tiny_dir, HFStudentConfig(lora=True, lora_r=4))
    other.load(tmp_path / "lora")
    q = [e.question for e in TASK.generate("sub_borrow", 20, np.random.default_rng(5))]
    assert other.answer(q) == student.answer(q)
    student.export(tmp_path / "merged")  # a plain HF model directory with the adapters merged in
    assert HFStudent(tmp_path / "merged").answer(q) == student.answer(q)
    assert any("lora_" in n for n, _ in student.model.named_parameters())  # the live student keeps its adapters


def test_bad_inputs_are_clear(tmp_path, tiny_dir):
    with pytest.raises(ValueError, match="does not exist"):
        HFStudent(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="batch_size"):
        HFStudentConfig(batch_size=0)
    with pytest.raises(ValueError, match="checkpoint"):
        HFStudent(tiny_dir).load(tmp_path)
    from skills import Example

    with pytest.raises(ValueError, match="max_length=16"):
        HFStudent(tiny_dir, HFStudentConfig(max_length=16)).train([Example("123+456=", "579" * 5, "x")], seed=0)


@pytest.mark.slow
def test_training_in_bounded_chunks_is_deterministic_and_learns(tiny_dir):
    config = HFStudentConfig(train_chunk_size=16, batch_size=8)
    data = TASK.generate("sub_borrow", 40, np.random.default_rng(0))
    first, second = HFStudent(tiny_dir, config), HFStudent(tiny_dir, config)
    stats = first.train(data, seed=3)
    second.train(data, seed=3)
    for a, b in zip(first.model.parameters(), second.model.parameters(), strict=True):
        assert torch.equal(a, b)
    assert stats["examples"] == 40 and np.isfinite(stats["loss"])
    assert first.train(data, seed=4)["loss"] < stats["loss"]  # 3 chunks x 2 epochs of real optimizer steps
    assert first.train([], seed=5)["loss"] is None


def test_check_inputs_names_unrepresentable_characters_and_overlong_text(default_dir):
    student = HFStudent(default_dir)
    problems = student.check_inputs(["12+34=", "１２+34=", "1" * 200 + "+1=", "x" * 10_000], ["46", "46", "1", "1"])
    assert problems[0] is None
    assert "cannot represent" in problems[1] and "１" in problems[1] and "２" in problems[1]
    assert "over the student's max_length of 128" in problems[2]
    assert "far over" in problems[3]
    question = "1" * 116 + "+1="  # fits for training, not with 8 generated tokens after it
    assert student.check_inputs([question], ["1"]) == [None]
    (evaluation,) = student.check_inputs([question])
    assert "max_new_tokens" in evaluation
