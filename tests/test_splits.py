import numpy as np

from skills import ArithmeticTask, Example, TaskSplits, TrainingPool, skill_names

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


def test_filter_catches_commuted_copies_of_test_questions():
    splits = TaskSplits.build(TASK, n_val=20, n_test=20, split_seed=0)
    test_q = next(e for e in splits.test["add_carry"])
    a, b = test_q.question[:-1].split("+")
    commuted = Example(f"{b}+{a}=", test_q.answer, "add_carry")
    kept, dropped = splits.filter_training([commuted, test_q])
    assert kept == [] and dropped == 2


def test_base_curriculum_is_clean():
    from students.default_student import DefaultStudentConfig, _curriculum

    pairs = _curriculum(DefaultStudentConfig(steps=50))
    splits = TaskSplits.build(TASK, n_val=200, n_test=400, split_seed=1234)
    questions = [p.prompt.split("<|user|>")[1].split("<|assistant|>")[0] for p in pairs]
    assert len(questions) == 50 * 64
    assert not any(splits.is_heldout(q) for q in questions)
