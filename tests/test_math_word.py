"""The math word-problem task: loading GSM8K/MATH JSONL, answer extraction and equivalence, skills, verification."""

from __future__ import annotations

import json

import numpy as np
import pytest

from skills.errors import InvalidConfig
from skills.math_word import SAMPLE_GSM8K, SAMPLE_MATH, MathWordTask, answers_match, extract_answer
from skills.registry import make_task
from skills.splits import TaskSplits, TrainingPool
from skills.task import Example, Verdict


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("3 + 4 = 7 apples. #### 7", "7"),
        ("#### 1,200\n", "1,200"),
        ("first #### 3 then #### -5", "-5"),  # the last marker
        ("so $x = \\boxed{\\frac{1}{2}}$.", "\\frac{1}{2}"),
        ("\\boxed{2} at first, finally \\boxed{\\dfrac{3}{4}}", "\\dfrac{3}{4}"),  # the last box
        ("\\boxed{\\sqrt{\\frac{a}{b}}}", "\\sqrt{\\frac{a}{b}}"),  # nested braces
        ("\\boxed{1 + {2", None),  # unbalanced
        ("no final answer", None),
    ],
)
def test_final_answer_extraction(text, answer):
    assert extract_answer(text) == answer


@pytest.mark.parametrize(
    ("gold", "reply"),
    [
        ("0.5", "1/2"),
        ("1/2", "\\frac{1}{2}"),
        ("\\frac{3}{4}", "the answer is \\boxed{\\dfrac{3}{4}}"),
        ("1200", "#### 1,200"),  # thousands separator
        ("1,000,000", "1000000"),
        ("5", "$5"),  # units and currency
        ("12", "12 dollars"),
        ("50", "50\\%"),
        ("-31/8", "\\boxed{-\\frac{31}{8}}"),  # negative fractions
        ("-7", "-7.0"),
    ],
)
def test_equivalent_answers_are_accepted(gold, reply):
    assert answers_match(gold, reply)


@pytest.mark.parametrize(
    ("gold", "reply"),
    [
        ("12", "21"),
        ("3", "-3"),
        ("-3", "3"),
        ("1/2", "2"),
        ("\\frac{1}{2}", "0.25"),
        ("1200", "120"),
        ("7", ""),
        ("7", "\\boxed{"),
    ],
)
def test_wrong_answers_are_rejected(gold, reply):
    assert not answers_match(gold, reply)


def test_gsm8k_file_loads_as_one_skill_and_scores_free_text():
    task = make_task(f"math:{SAMPLE_GSM8K}")
    assert [s.name for s in task.skills] == ["word_problem"] and len(task) == 40
    (example,) = task.generate("word_problem", 1, np.random.default_rng(0))
    assert "####" in example.metadata["solution"] and example.answer in example.metadata["solution"]
    assert task.score(example, f"Let me think. #### {example.answer}") == 1.0
    assert task.score(example, "#### 999999") == 0.0


def test_math_file_skills_come_from_type_or_type_and_level():
    by_type = MathWordTask(SAMPLE_MATH)
    assert [s.name for s in by_type.skills] == ["algebra", "counting_and_probability", "number_theory", "prealgebra"]
    by_level = MathWordTask(SAMPLE_MATH, skills="type_level")
    assert "algebra_level1" in {s.name for s in by_level.skills} and len(by_level.skills) > 4
    with pytest.raises(InvalidConfig, match="skills"):
        MathWordTask(SAMPLE_MATH, skills="subject")


def test_a_skill_map_files_gsm8k_problems(tmp_path):
    questions = [json.loads(line)["question"] for line in SAMPLE_GSM8K.read_text().splitlines()]
    mapping = {q: ("Money" if "$" in q else "counting") for q in questions}
    # The format skill discovery writes: question -> [category, fine skill].
    path = tmp_path / "question_skills.json"
    path.write_text(json.dumps({q: [skill, "fine"] for q, skill in mapping.items()}))
    for source in (mapping, str(path)):
        task = MathWordTask(SAMPLE_GSM8K, skill_map=source)
        assert [s.name for s in task.skills] == ["counting", "money"]
        assert all("$" in ex.question for ex in task.generate("money", 5, np.random.default_rng(1)))


def test_verify_uses_the_files_gold_answer_and_never_the_examples_metadata():
    task = MathWordTask(SAMPLE_MATH)
    (example,) = task.generate("number_theory", 1, np.random.default_rng(0))
    assert task.verify(example).verdict is Verdict.CORRECT
    wrong = Example(example.question, example.answer + "1", "number_theory", {"solution": "\\boxed{trust me}"})
    assert task.verify(wrong).verdict is Verdict.WRONG_ANSWER
    spaced = Example("  " + example.question.upper() + " ", example.answer, "number_theory")
    assert task.verify(spaced).verdict is Verdict.CORRECT  # the canonical key: case and spacing ignored
    new = Example("What is the greatest common divisor of 1001 and 77?", "77", "number_theory")
    assert task.verify(new).verdict is Verdict.UNVERIFIABLE


def test_generation_is_seeded():
    task = MathWordTask(SAMPLE_MATH)
    draw = [ex.question for ex in task.generate("algebra", 6, np.random.default_rng(3))]
    assert draw == [ex.question for ex in task.generate("algebra", 6, np.random.default_rng(3))]
    assert draw != [ex.question for ex in task.generate("algebra", 6, np.random.default_rng(4))]


def test_splits_hold_out_questions_the_training_pool_never_returns():
    task = MathWordTask(SAMPLE_MATH)
    splits = TaskSplits.build(task, n_val=1, n_test=1, split_seed=0, heldout_fraction=0.5)
    held = {ex.question for ex in splits.all_questions("val") + splits.all_questions("test")}
    assert len(held) == 2 * len(task.skills)
    pool = TrainingPool(splits)
    drawn = {
        ex.question for skill in ("algebra", "number_theory") for ex in pool.sample(skill, 50, np.random.default_rng(0))
    }
    assert drawn and not drawn & held


def test_a_file_too_small_for_the_splits_is_refused_with_the_numbers():
    with pytest.raises(InvalidConfig, match=r"fewer than 40 distinct held-out questions.*smaller n_val/n_test"):
        TaskSplits.build(MathWordTask(SAMPLE_MATH), n_val=20, n_test=20, split_seed=0)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("not json\n", "does not parse"),
        ('{"question": "q", "answer": "no marker"}\n', "#### <final answer>"),
        ('{"problem": "p", "solution": "no box", "type": "Algebra"}\n', "boxed"),
        ('{"problem": "p", "solution": "\\\\boxed{1}"}\n', "'type'"),
        ('{"text": "x"}\n', "GSM8K line"),
        ("\n", "holds none"),
    ],
)
def test_bad_files_get_clear_errors(tmp_path, content, match):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(InvalidConfig, match=match):
        make_task(f"math:{path}")


def test_a_missing_file_says_where_samples_are():
    with pytest.raises(InvalidConfig, match=r"does not exist.*samples ship in"):
        make_task("math:/nonexistent/problems.jsonl")
