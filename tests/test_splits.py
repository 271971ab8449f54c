import re

import numpy as np
import pytest

from skills import ArithmeticTask, Example, TaskSplits, TrainingPool, skill_names
from skills.errors import InvalidConfig

TASK = ArithmeticTask()


def test_val_and_test_are_disjoint_and_fixed_by_split_seed():
    splits = TaskSplits.build(TASK, n_val=100, n_test=150, split_seed=7)
    again = TaskSplits.build(TASK, n_val=100, n_test=150, split_seed=7)
    assert splits.val == again.val and splits.test == again.test
    for skill in skill_names(TASK):
        val = {TASK.heldout_key(e.question) for e in splits.val[skill]}
        test = {TASK.heldout_key(e.question) for e in splits.test[skill]}
        assert len(val) == 100 and len(test) == 150
        assert not val & test


def test_training_pool_never_yields_a_heldout_question_and_counts_drops():
    splits = TaskSplits.build(TASK, n_val=100, n_test=100, split_seed=0)
    heldout = {TASK.heldout_key(e.question) for split in ("val", "test") for e in splits.all_questions(split)}
    pool = TrainingPool(splits)
    data = pool.sample_plan(dict.fromkeys(skill_names(TASK), 500), np.random.default_rng(0))
    assert len(data) == 500 * len(skill_names(TASK))
    assert not {TASK.heldout_key(e.question) for e in data} & heldout
    assert sum(pool.dropped.values()) > 0  # about 30% of the generated questions are reserved


def _canonical(question):
    """This test's own canonical form of an arithmetic question (not the task's heldout_key, which is under
    test): the operands of + and * in sorted order, - and ? as written."""
    body = question.rstrip("=")
    op = next(c for c in "+-*?" if c in body)
    terms = [int(t) for t in body.split(op)]
    return op, tuple(sorted(terms) if op in "+*" else terms)


def _permutations(question):
    from itertools import permutations

    body = question.rstrip("=")
    op = next(c for c in "+*" if c in body)
    return {op.join(p) + "=" for p in permutations(body.split(op))}


def test_filter_catches_commuted_copies_of_every_heldout_question():
    splits = TaskSplits.build(TASK, n_val=50, n_test=50, split_seed=0)
    commutative = ("add_no_carry", "add_carry", "add_3d_carry", "sum3", "mul_1d")
    copies = [
        Example(q, e.answer, e.skill)
        for split in ("val", "test")
        for e in splits.all_questions(split)
        if e.skill in commutative
        for q in _permutations(e.question)
    ]
    assert len(copies) > 2 * 100 * len(commutative)  # the questions themselves and their reorderings
    kept, dropped = splits.filter_training(copies)
    assert kept == [] and dropped == len(copies)


def _default_heldout_keys():
    """Canonical forms of every validation and test question at the environment's default sizes."""
    from envgym.skill_list_config import SkillListConfig

    config = SkillListConfig()
    assert (config.n_val, config.n_test) == (200, 400)
    splits = TaskSplits.build(TASK, n_val=config.n_val, n_test=config.n_test, split_seed=config.split_seed)
    keys = {_canonical(e.question) for split in ("val", "test") for e in splits.all_questions(split)}
    assert len(keys) == 600 * len(skill_names(TASK))
    return splits, keys


@pytest.mark.slow
def test_base_curriculum_never_shares_a_question_with_default_val_or_test():
    from students.default_student import DefaultStudentConfig, _curriculum

    _, heldout = _default_heldout_keys()
    pairs = _curriculum(DefaultStudentConfig())
    questions = [p.prompt.split("<|user|>")[1].split("<|assistant|>")[0] for p in pairs]
    assert len(questions) == len(pairs) > 10_000
    assert not {_canonical(q) for q in questions} & heldout


def test_pool_data_at_default_sizes_never_shares_a_question_with_val_or_test():
    splits, heldout = _default_heldout_keys()
    data = TrainingPool(splits).sample_plan(dict.fromkeys(skill_names(TASK), 2000), np.random.default_rng(0))
    assert not {_canonical(e.question) for e in data} & heldout


def test_a_plan_draws_distinct_questions_and_a_small_skill_gives_all_it_has():
    splits = TaskSplits.build(TASK, n_val=20, n_test=20, split_seed=0)
    pool = TrainingPool(splits)
    data = pool.sample("add_carry", 1000, np.random.default_rng(0))
    keys = [TASK.heldout_key(e.question) for e in data]
    assert len(data) == 1000 and len(set(keys)) == 1000  # no question twice in one plan
    # 2-digit additions with a carry: about 2,000 unordered pairs, 30% held out. Asking for more gives them all once.
    everything = pool.sample("add_carry", 3000, np.random.default_rng(1))
    keys = {TASK.heldout_key(e.question) for e in everything}
    assert len(keys) == len(everything) and 1000 < len(everything) < 3000
    # The default student's pre-training stream draws with repeats.
    stream = pool.sample("add_carry", 3000, np.random.default_rng(1), distinct=False)
    assert len(stream) == 3000 and len({TASK.heldout_key(e.question) for e in stream}) < 3000


def test_a_band_the_generator_never_reaches_is_refused_after_a_bounded_number_of_draws():
    pool = TrainingPool(TaskSplits.build(TASK, n_val=20, n_test=20, split_seed=0))
    # Two per round until 1,000 draws per requested example: the refusal names exactly how many were tried.
    with pytest.raises(InvalidConfig, match=r"requested subset; none in 2002 draws"):
        pool.sample("add_carry", 2, np.random.default_rng(0), keep=lambda example: False)
    # A rare band (about one question in ten) is rejection-sampled, not refused: rounds that find nothing go on.
    rare = pool.sample("add_3d_carry", 5, np.random.default_rng(0), keep=lambda example: example.question[0] == "9")
    assert len(rare) == 5 and all(example.question[0] == "9" for example in rare)


def test_the_reserved_share_is_a_fixed_salted_hash_of_the_heldout_key():
    from skills.splits import is_reserved

    # Pinned: a change to the salt, the hash or the bucketing silently redraws every split, and numbers measured
    # before it stop being comparable. "6+32=" lands in bucket 3000 of 10,000 and "13+15=" in bucket 2999; the
    # reserved part is the buckets below heldout_fraction * 10,000, for the question and its commuted copy alike.
    for question in ("6+32=", "32+6="):
        assert not is_reserved(TASK, question, 0.3) and is_reserved(TASK, question, 0.3001)
    for question in ("13+15=", "15+13="):
        assert is_reserved(TASK, question, 0.3) and not is_reserved(TASK, question, 0.2999)
    questions = [f"{a}+{b}=" for a in range(200) for b in range(a, 200)]
    for fraction in (0.3, 0.5):
        share = np.mean([is_reserved(TASK, question, fraction) for question in questions])
        assert abs(share - fraction) < 0.01
    splits = TaskSplits.build(TASK, n_val=5, n_test=5, split_seed=0, heldout_fraction=0.5)
    assert splits.heldout_fraction == 0.5
    assert [splits.is_heldout(question) for question in questions[:400]] == [
        is_reserved(TASK, question, 0.5) for question in questions[:400]
    ]
    assert all(is_reserved(TASK, ex.question, 0.5) for ex in splits.all_questions("val") + splits.all_questions("test"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_val": 0, "n_test": 5}, "Expects n_val >= 1 and n_test >= 1; actual n_val=0, n_test=5."),
        ({"n_val": 5, "n_test": 0}, "Expects n_val >= 1 and n_test >= 1; actual n_val=5, n_test=0."),
        ({"n_val": 5, "n_test": 5, "heldout_fraction": 0.0}, "Expects 0 < heldout_fraction < 1; actual 0.0."),
        ({"n_val": 5, "n_test": 5, "heldout_fraction": 1.0}, "Expects 0 < heldout_fraction < 1; actual 1.0."),
        (
            {"n_val": 10, "n_test": 10},
            "Skill 'add_no_carry' of task 'arithmetic' yields fewer than 20 distinct held-out questions (found 6). "
            "Ask for smaller n_val/n_test.",
        ),
    ],
)
def test_splits_that_cannot_be_built_are_refused_with_the_fix(kwargs, message):
    with pytest.raises(InvalidConfig, match=f"^{re.escape(message)}$"):
        TaskSplits.build(_Tiny(), split_seed=0, **kwargs)


def test_a_skill_whose_every_training_question_is_held_out_is_refused_after_a_bounded_number_of_draws():
    splits = TaskSplits.build(_Tiny(), n_val=1, n_test=1, split_seed=0, heldout_fraction=0.9999)
    assert all(splits.is_heldout(f"{a}+{b}=") for a in range(5) for b in range(a, 5))
    message = (
        "Expects skill 'add_carry' to have training questions outside the held-out share; none in 2002 draws (a "
        "small file puts every problem of a skill in validation/test). Add problems of that skill, or drop it."
    )
    with pytest.raises(InvalidConfig, match=f"^{re.escape(message)}$"):
        TrainingPool(splits).sample("add_carry", 2, np.random.default_rng(0))
    # A skill with some training questions gives those it has, however many are asked for.
    splits = TaskSplits.build(_Tiny(), n_val=1, n_test=1, split_seed=0)
    drawn = TrainingPool(splits).sample("add_carry", 20, np.random.default_rng(0))
    assert sorted(ex.question for ex in drawn) == sorted(
        f"{a}+{b}=" for a in range(5) for b in range(a, 5) if not splits.is_heldout(f"{a}+{b}=")
    )


class _Tiny(ArithmeticTask):
    """Arithmetic whose every skill asks only the 15 sums of two numbers below 5 (6 of them held out)."""

    def generate(self, skill, n, rng):
        sums = [(a, b) for a in range(5) for b in range(a, 5)]
        return [Example(f"{a}+{b}=", str(a + b), skill) for a, b in (sums[i] for i in rng.integers(len(sums), size=n))]


def test_the_smallest_splits_are_one_question_per_skill_and_only_val_or_test_are_splits():
    splits = TaskSplits.build(TASK, n_val=1, n_test=1, split_seed=0, heldout_fraction=0.01)
    assert all(len(splits.val[skill]) == len(splits.test[skill]) == 1 for skill in skill_names(TASK))
    assert [ex.skill for ex in splits.all_questions("test")] == list(skill_names(TASK))
    assert splits.all_questions("val") != splits.all_questions("test")
    with pytest.raises(InvalidConfig, match=re.escape("Expects split 'val' or 'test'; actual 'train'.")):
        splits.all_questions("train")
