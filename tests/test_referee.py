"""The environment is the referee: one test per hardening case of a careless or hostile teacher (plans, examples,
plan kinds, tasks that do not fit the student), plus a property-based test of the invariants over arbitrary plans."""

import pickle

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import envgym
from envgym import CountPlan, ExamplesPlan, PreferencePlan, ReweightPlan, SynthesisPlan
from envgym.error import BudgetExceeded, Error, InvalidConfig, InvalidPlan, ResetNeeded
from envgym.files import dumps
from skills import Example, PreferencePair, Skill, make_task
from skills.task import Verdict


@pytest.fixture(scope="module")
def env():
    """One long episode shared by the cheap plan tests (tiny splits; each test resets it)."""
    env = gym.make("envgym/SkillList-v0", steps=1000, budget=64, n_val=5, n_test=5, max_errors=1000)
    # Gymnasium's PassiveEnvChecker records the first reset's data only when that reset succeeds: a test whose
    # reset is refused must never be the first (test order differs under pytest -n).
    env.reset(seed=0)
    yield env
    env.close()


def _fresh(env, seed=0):
    env.reset(seed=seed)
    return env.unwrapped


# -- 1. every plan kind is validated in one place -----------------------------------------------------------
@pytest.mark.parametrize(
    ("plan", "error", "message"),
    [
        (CountPlan({"add_carry": -5000, "compare": 5064}), InvalidPlan, "non-negative count for skill 'add_carry'"),
        (CountPlan({"add_carry": -100000}), InvalidPlan, "non-negative"),
        (CountPlan({"sub_borow": 3}), InvalidPlan, "Did you mean 'sub_borrow'"),
        (CountPlan({"zzz": 3}), InvalidPlan, "skills from: add_no_carry, add_carry, add_3d_carry, sum3"),
        (CountPlan({"add_carry": 65}), BudgetExceeded, "at most 64 examples"),
        (CountPlan({"add_carry": 2.5}), InvalidPlan, r"whole number .* 2\.5 \(float\)"),
        (CountPlan({"add_carry": float("nan")}), InvalidPlan, "whole number"),
        (CountPlan({"add_carry": "5"}), InvalidPlan, r"whole number .*\(str\)"),
        (CountPlan({"add_carry": True}), InvalidPlan, "whole number"),
        (CountPlan([1, 2]), InvalidPlan, "CountPlan.counts"),
        (CountPlan([0] * 40), InvalidPlan, r"\.\.\. \(list\)"),  # a long value is cut, its type still named
        ({"add_carry": 10**30}, BudgetExceeded, "at most 64"),
        (np.array([-1.5, 0, 0, 0, 0, 0, 0, 0]), InvalidPlan, "non-negative, finite budget shares"),
        (np.array(["1"] * 8), InvalidPlan, "numeric"),
        (np.array([True] * 8), InvalidPlan, "numeric"),
        ([1, None, 0, 0, 0, 0, 0, 0], InvalidPlan, "numeric"),
        ([[1, 2], [3]], InvalidPlan, "numpy cannot read|shape"),
        (ExamplesPlan("12+34="), InvalidPlan, "list of examples"),
        (ExamplesPlan([42]), InvalidPlan, "example 0 to be a skills.Example"),
        (ExamplesPlan([{"question": "1+1="}]), InvalidPlan, r"example 0 .*missing \['answer', 'skill'\]"),
        (ExamplesPlan([Example("1+1=", 2, "add_carry")]), InvalidPlan, "example 0's answer to be a string"),
        (ExamplesPlan([Example("1+1=", "2", "add_cary")]), InvalidPlan, "Did you mean 'add_carry'"),
        (ExamplesPlan([Example("1+1=", "2", "add_carry")] * 65), BudgetExceeded, "at most 64"),
        (None, InvalidPlan, "Expects a plan"),
        (PreferencePlan("1+1="), InvalidPlan, "PreferencePlan.pairs to be a list"),
        (
            PreferencePlan([PreferencePair("1+1=", "2", "3", "add_carry")], "1+1="),
            InvalidPlan,
            "PreferencePlan.examples to be a list of examples; actual '1\\+1=' \\(str\\)",
        ),
        (PreferencePlan([{"question": "1+1=", "chosen": "2"}]), InvalidPlan, r"missing \['rejected', 'skill'\]"),
        (PreferencePlan([PreferencePair("1+1=", "2", "3", "add_cary")]), InvalidPlan, "Did you mean 'add_carry'"),
        (PreferencePlan([PreferencePair("1+1=", 2, "3", "add_carry")]), InvalidPlan, "chosen to be a string"),
        (PreferencePlan([("1+1=", "2", "3", "add_carry")]), InvalidPlan, "pair 0 to be a skills.PreferencePair"),
        (PreferencePlan([PreferencePair("1+1=", "2", "3", "add_carry")] * 65), BudgetExceeded, "at most 64"),
        (
            PreferencePlan(
                [PreferencePair("1+1=", "2", "3", "add_carry")] * 40, [Example("1+1=", "2", "add_carry")] * 25
            ),
            BudgetExceeded,
            "at most 64",
        ),
    ],
)
def test_bad_plans_are_refused_and_change_nothing(env, plan, error, message):
    base = _fresh(env)
    before = (base.step_index, base.budget_left, base.student.model.model.embed_tokens.weight.sum().item())
    with pytest.raises(error, match=message):
        env.step(plan)
    assert (base.step_index, base.budget_left, base.student.model.model.embed_tokens.weight.sum().item()) == before


def test_a_handlers_output_is_validated_item_by_item_with_its_index():
    from envgym.plans import validate_training_items

    good = Example("1+1=", "2", "add_carry")
    with pytest.raises(InvalidPlan, match=r"preference pair 1 to have keys .*missing \['rejected', 'skill'\]"):
        validate_training_items([good, {"question": "1+1=", "chosen": "2"}], ["add_carry"])
    with pytest.raises(InvalidPlan, match=r"example 2 to be a skills.Example"):
        validate_training_items([good, PreferencePair("1+1=", "2", "3", "add_carry"), 42], ["add_carry"])


def test_integer_valued_floats_are_whole_counts(env):
    _fresh(env, seed=3)
    _, _, _, _, info = env.step(CountPlan({"add_carry": np.float32(3.0), "compare": 2.0}))
    assert info["budget_spent"] == 5 and info["examples_used"] == 5


def test_step_before_reset_is_a_reset_needed_error():
    env = gym.make("envgym/SkillList-v0", steps=1, budget=8, n_val=4, n_test=4)
    with pytest.raises(ResetNeeded, match="reset"):
        env.step({"add_carry": 1})
    assert issubclass(ResetNeeded, RuntimeError)


# -- teacher examples: only verified, representable, held-out-free data is trained on --------------------------
def test_examples_are_refereed_and_every_rejection_is_counted_by_index(env):
    base = _fresh(env)
    heldout = base.splits.val["add_carry"][0]
    plan = ExamplesPlan(
        [
            Example("123+456=", "579", "add_no_carry"),  # 0: kept
            Example("123+456=", "580", "add_no_carry"),  # 1: wrong answer
            Example("12+34=", "46", "mul_1d"),  # 2: right answer, filed under the wrong skill
            Example("１１+２９=", "40", "add_carry"),  # 3: full-width digits
            Example("9" * 5000 + "+" + "9" * 5000 + "=", "1", "add_carry"),  # 4: 10,000-character sum
            {"question": heldout.question, "answer": heldout.answer, "skill": "add_carry"},  # 5: held out (a dict)
        ]
    )
    _, _, _, _, info = env.step(plan)
    assert [ex.question for ex in base.last_training_data] == ["123+456="]
    assert info["examples_used"] == 1 and info["dropped_heldout"] == 1 and info["budget_spent"] == 6
    rows = {row["index"]: row for row in info["rejected_examples"]}
    assert [row["index"] for row in info["rejected_examples"]] == [1, 2, 3, 4]
    assert rows[1]["reason"] == Verdict.WRONG_ANSWER.value and rows[2]["reason"] == Verdict.WRONG_SKILL.value
    assert [rows[i]["skill"] for i in (1, 2, 4)] == ["add_no_carry", "mul_1d", "add_carry"]  # as filed
    assert rows[3]["reason"] in ("unfit_for_student", Verdict.MALFORMED.value)
    assert rows[4]["reason"] == "unfit_for_student" and "max_length" in rows[4]["detail"]
    assert info["rejected"] == 4 and sum(info["rejections"].values()) == 4


def test_a_short_question_with_an_answer_beyond_the_students_context_is_unfit_not_just_wrong(env):
    _fresh(env)
    long_answer = Example("12+34=", "4" * 300, "add_no_carry")  # the question fits; question + answer do not
    _, _, _, _, info = env.step(ExamplesPlan([long_answer]))
    assert info["rejections"] == {"unfit_for_student": 1}
    assert "max_length" in info["rejected_examples"][0]["detail"]


def test_rejected_examples_listed_are_capped_at_max_errors_but_all_are_counted():
    env = gym.make("envgym/SkillList-v0", steps=2, budget=64, n_val=5, n_test=5, max_errors=2)
    env.reset(seed=0)
    wrong = [Example(f"{n}+{n}=", str(2 * n + 1), "add_carry") for n in range(55, 60)]
    _, _, _, _, info = env.step(ExamplesPlan(wrong))
    assert info["rejected"] == 5 and info["rejections"] == {"wrong_answer": 5}
    assert [row["index"] for row in info["rejected_examples"]] == [0, 1]
    env.close()


def test_registered_plan_kinds_are_refereed_by_the_core(env):
    base = _fresh(env)
    kind = "doubles-refereed"
    if kind not in base._plan_handlers:

        def doubles(plan):
            return [Example(f"{n}+{n}=", str(2 * n), "add_carry") for n in range(55, 62)] + [
                Example("55+55=", "111", "add_carry")  # a wrong example from plug-in code
            ], {}

        base.register_plan_kind(kind, doubles)
    with pytest.raises(InvalidConfig, match="already registered"):
        base.register_plan_kind(kind, lambda plan: ([], {}))

    class Doubles:
        size = 8

    Doubles.kind = kind
    _, _, _, _, info = env.step(Doubles())
    assert info["budget_spent"] == 8 and info["rejections"] == {"wrong_answer": 1}
    assert info["examples_used"] + info["dropped_heldout"] == 7
    assert all(base.task.verify(ex).ok for ex in base.last_training_data)

    class Greedy:
        size = 1

    Greedy.kind = kind  # returns 8 examples for a plan charged 1
    with pytest.raises(InvalidPlan, match="at most the plan's size"):
        env.step(Greedy())
    Greedy.size = -3
    with pytest.raises(InvalidPlan, match="non-negative"):
        env.step(Greedy())


def _registered_liar(plan):
    """A plug-in handler that declares one size and returns wrong, duplicated and held-out data."""
    right = [Example(f"{n}+{n}=", str(2 * n), "add_carry") for n in range(55, 63)]
    return [*right, Example("55+55=", "111", "add_carry"), Example("56+56=", "112", "add_carry")], {}


def _plans_of_every_kind(base):
    """(env id, plan) for every plan kind, built-in and registered; plans that hold wrong, repeated and held-out
    questions where the kind lets a teacher write data."""
    heldout = next(ex for ex in base.splits.all_questions("val") if ex.skill == "add_carry")
    a, b = heldout.question.rstrip("=").split("+")
    examples = [
        Example("123+456=", "579", "add_no_carry"),
        Example("456+123=", "579", "add_no_carry"),  # the same question commuted
        Example("47+38=", "84", "add_carry"),  # wrong
        Example(f"{b}+{a}=", heldout.answer, "add_carry"),  # a commuted copy of a validation question
        Example("952-127=", "825", "sub_borrow"),
    ]
    return [
        ("envgym/SkillList-v0", CountPlan({"add_carry": 24, "sub_borrow": 16})),
        ("envgym/SkillList-v0", ExamplesPlan(examples)),
        ("envgym/SkillList-v0", "registered"),
        ("envgym/OpenEnded-v0", {"request": "subtraction with a borrow", "n": 24}),
        ("envgym/OpenEnded-v0", examples),
        ("envgym/SkillTree-v0", "tree"),
        ("envgym/SkillList-v0", ReweightPlan(40, skill_weights={"add_carry": 3, "sub_borrow": 1})),
        ("envgym/SkillList-v0", SynthesisPlan((("add_carry", 24), ("sub_borrow", 16)))),
        (
            "envgym/SkillList-v0",
            PreferencePlan(
                [
                    PreferencePair("58+67=", "125", "115", "add_carry"),
                    PreferencePair("67+58=", "125", "115", "add_carry"),  # the same pair, question commuted
                    PreferencePair("58+67=", "125", "124", "add_carry"),  # another failure of the same question
                    PreferencePair("29+39=", "67", "68", "add_carry"),  # chosen is wrong
                    PreferencePair("29+19=", "48", "48", "add_carry"),  # no preference
                    PreferencePair(f"{b}+{a}=", heldout.answer, "0", "add_carry"),  # a held-out question
                ],
                examples[:2],  # SFT in the same step: one trained, one repeat
            ),
        ),
    ]


KIND_IDS = [
    "count",
    "examples",
    "registered",
    "request",
    "open-examples",
    "tree",
    "reweight-pool",
    "synthesize",
    "preferences",
]


@pytest.mark.slow
@pytest.mark.parametrize("case", range(len(KIND_IDS)), ids=KIND_IDS)
def test_every_plan_kinds_data_takes_the_same_referee_path(case):
    """Whatever kind made the data: the budget is charged at least what was trained on and at most budget_next;
    only verified, distinct, non-held-out questions are trained on; every dropped one is counted."""
    probe = gym.make("envgym/SkillList-v0", steps=2, budget=64, n_val=40, n_test=40)
    probe.reset(seed=0)
    env_id, plan = _plans_of_every_kind(probe.unwrapped)[case]
    pool = {"pool_size": 400} if KIND_IDS[case] == "reweight-pool" else {}  # 50 per skill
    env = gym.make(env_id, steps=2, budget=64, n_val=40, n_test=40, **pool)
    env.reset(seed=0)
    base = env.unwrapped
    if plan == "registered":
        base.register_plan_kind("liar", _registered_liar)
        plan = type("Liar", (), {"kind": "liar", "size": 10})()
    elif plan == "tree":
        from envgym import Explore

        plan = [Explore("sub_borrow", 2, allocation=10), Explore("add_carry", 2, allocation=6)]
    allowed, left = base.budget_next, base.budget_left
    _, _, _, _, info = env.step(plan)
    trained = base.last_training_data
    assert len(trained) == info["examples_used"] <= info["budget_spent"] <= allowed
    assert info["budget_spent"] == left - base.budget_left
    keys = [(base.task.heldout_key(ex.question), getattr(ex, "rejected", None)) for ex in trained]
    assert len(set(keys)) == len(keys), "a question was trained on twice in one plan"
    for item in trained:
        example = item.chosen_example() if isinstance(item, PreferencePair) else item
        assert base.task.verify(example).ok, example
        assert not base.splits.is_heldout(example.question), example
    if case in (1, 4):  # the teacher's five examples: one repeat, one wrong, one held out, two trained
        assert info["rejections"] == {"duplicate": 1, "wrong_answer": 1} and info["dropped_heldout"] == 1
        assert info["examples_used"] == 2 and info["budget_spent"] == 5
    if case == 2:  # ten from the plug-in: one wrong, one repeat (a commuted copy is a repeat too), charged 10
        assert info["rejections"] == {"duplicate": 1, "wrong_answer": 1} and info["budget_spent"] == 10
        assert info["examples_used"] + info["dropped_heldout"] == 8
    if case in (0, 5, 7):  # the task's own data: all the plan asked for, distinct
        assert info["examples_used"] == info["budget_spent"] and info["rejected"] == 0
    if case == 8:  # two pairs and one SFT example trained; a repeat of each, a wrong chosen, no preference, held out
        assert info["rejections"] == {"duplicate": 2, "not_a_preference": 1, "wrong_answer": 1}
        assert info["dropped_heldout"] == 1 and info["budget_spent"] == 8
        assert sorted(type(item).__name__ for item in trained) == ["Example", "PreferencePair", "PreferencePair"]
        assert info["preference_loss"] is not None
    if case == 6:  # 30 add_carry and 10 sub_borrow, all from the fixed pool, which holds enough of both
        assert info["pool_short"] == 0
        pool_questions = {ex.question for ex in base.fixed_pool.examples}
        assert {ex.question for ex in trained} <= pool_questions
        assert [sum(ex.skill == skill for ex in trained) for skill in ("add_carry", "sub_borrow")] == [30, 10]
    env.close()
    probe.close()


def test_a_plug_in_that_declares_less_than_it_returns_is_refused_and_charged_nothing(env):
    base = _fresh(env)
    if "size-liar" not in base._plan_handlers:
        base.register_plan_kind("size-liar", lambda plan: ([Example("1+2=", "3", "add_no_carry")] * 101, {}))
    liar = type("SizeLiar", (), {"kind": "size-liar", "size": 0})()
    left = base.budget_left
    with pytest.raises(InvalidPlan, match=r"at most the plan's size \(0\).*actual 101"):
        env.step(liar)
    assert base.budget_left == left and base.step_index == 0 and base.last_training_data == []


class _NoVerifierTask:
    """A user task without ``verify``: its examples cannot be checked independently."""

    name = "copy"

    @property
    def skills(self):
        return [Skill("copy", "Repeat the digits.")]

    def generate(self, skill, n, rng):
        return [Example(f"{v}=", str(v), "copy") for v in rng.integers(100, 1000, n)]

    def score(self, example, answer):
        return float(answer.strip() == example.answer)

    def heldout_key(self, question):
        return question


@pytest.mark.parametrize("accept", [False, True])
def test_unverifiable_examples_are_rejected_or_flagged_and_always_counted(accept):
    env = gym.make(
        "envgym/SkillList-v0", task=_NoVerifierTask(), steps=1, budget=8, n_val=4, n_test=4, accept_unverifiable=accept
    )
    env.reset(seed=0)
    _, _, _, _, info = env.step(ExamplesPlan([Example("123=", "123", "copy"), Example("456=", "999", "copy")]))
    if accept:
        assert info["unverifiable_accepted"] == 2 and info["rejected"] == 0
        assert info["examples_used"] + info["dropped_heldout"] == 2
    else:
        assert info["rejections"] == {"unverifiable": 2} and info["examples_used"] == 0
        assert "verify" in info["rejected_examples"][0]["detail"]


@pytest.fixture(scope="module")
def rg_env():
    env = gym.make("envgym/SkillList-v0", task="rg:chain_sum,gcd", steps=100, budget=32, n_val=20, n_test=5)
    yield env
    env.close()


def test_reasoning_gym_examples_are_verified_independently(rg_env):
    rg_env.reset(seed=0)
    plan = ExamplesPlan(
        [
            Example("State the final answer to the following arithmetic problem: 12 + 30 =", "99", "chain_sum"),
            Example("What colour is the sky?", "banana", "chain_sum"),
        ]
    )
    _, _, _, _, info = rg_env.step(plan)
    assert info["examples_used"] == 0 and info["rejected"] == 2
    assert info["rejections"].get("wrong_answer") == 1


def test_near_copies_of_validation_questions_never_reach_training(rg_env):
    base = rg_env.unwrapped
    rg_env.reset(seed=0)
    val = base.splits.val["chain_sum"][:8]
    variants = [v.question + "?" for v in val] + ["  " + v.question.upper() for v in val]
    plan = ExamplesPlan([Example(q, v.answer, "chain_sum") for q, v in zip(variants, val + val, strict=True)])
    _, _, _, _, info = rg_env.step(plan)
    assert info["examples_used"] == 0
    assert info["dropped_heldout"] + info["rejected"] == 16


def test_a_task_that_does_not_fit_the_student_is_refused_at_construction():
    with pytest.raises(InvalidConfig, match=r"leg_counting: .*Drop those skills \(keep basic_arithmetic, gcd\)"):
        gym.make("envgym/SkillList-v0", task="rg:basic_arithmetic,gcd,leg_counting", n_val=5, n_test=5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"budget": 100_000_000}, "max_budget"),
        ({"steps": 0}, "steps to be an integer >= 1"),
        ({"seed": -1}, "seed to be an integer >= 0"),
        ({"n_val": 10**8}, "n_val <="),
        ({"accept_unverifiable": "yes"}, "True or False"),
        ({"student_config": {"lerning_rate": 1e-3}}, "Did you mean 'learning_rate'"),
        ({"student_config": {"max_length": 4096}}, "model's context"),
        # Answers longer than the student may generate: every one would be scored wrong whatever it learned.
        ({"student_config": {"max_new_tokens": 3}}, r"max_new_tokens >= 4 for task 'arithmetic' .*--student-max-new"),
        # A task's own generation room (its student_defaults) yields to the caller's fields.
        ({"task": "ifeval-like", "student_config": {"max_new_tokens": 8}}, r"max_new_tokens >= 40 for task 'ifeval"),
        ({"task": "code", "student_config": {"max_new_tokens": 20}}, r"max_new_tokens >= \d+ for task 'code'"),
    ],
)
def test_bad_configs_are_refused_with_the_fix(kwargs, message):
    with pytest.raises(InvalidConfig, match=message):
        gym.make("envgym/SkillList-v0", **{"n_val": 4, "n_test": 4, **kwargs})


def test_negative_reset_seed_is_a_library_error(env):
    with pytest.raises(InvalidConfig, match="seed"):
        env.reset(seed=-1)


def test_training_on_nothing_logs_null_loss(env):
    _fresh(env)
    _, _, _, _, info = env.step(np.zeros(8, dtype=np.int64))
    assert info["train_loss"] is None


# -- pickling (multiprocessing, Ray and lookahead search need it) ---------------------------------------------
SUB_BORROW_PLANS = {
    "envgym/SkillList-v0": {"sub_borrow": 16},
    "envgym/OpenEnded-v0": {"request": "sub_borrow", "n": 16},
    "envgym/SkillTree-v0": {"type": "explore", "skill": "sub_borrow", "n_new_subskills": 2, "allocation": 8},
    "envgym/InstructionFollowing-v0": {"upper": 16},  # its skills are constraint types
}


@pytest.mark.parametrize("env_id", sorted(envgym.ENV_IDS))
def test_every_registered_env_pickles_and_continues_identically(env_id):
    env = gym.make(env_id, steps=2, budget=16, n_val=5, n_test=5)
    env.reset(seed=2)
    copy = pickle.loads(pickle.dumps(env))
    plan = SUB_BORROW_PLANS[env_id]  # a new env adds its own way of asking for 16 sub_borrow examples here
    a = env.step(plan)
    b = copy.step(plan)
    assert dumps(a, sort_keys=True) == dumps(b, sort_keys=True)  # observation, reward, flags and info
    assert [e.question for e in env.unwrapped.last_training_data] == [
        e.question for e in copy.unwrapped.last_training_data
    ]


def test_reasoning_gym_env_pickles(rg_env):
    rg_env.reset(seed=0)
    copy = pickle.loads(pickle.dumps(rg_env))
    assert copy.unwrapped.task.name == "rg:chain_sum,gcd"


# -- the invariants, over arbitrary plans ----------------------------------------------------------------------
_UNICODE_TEXT = st.text(st.characters(codec="utf-8"), max_size=40)
_ARITH = make_task("arithmetic")
_SKILLS = [s.name for s in _ARITH.skills]
_counts = st.one_of(
    st.integers(-(10**12), 10**12),
    st.integers(0, 12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    _UNICODE_TEXT,
)
_example = st.builds(
    Example,
    question=st.one_of(_UNICODE_TEXT, st.sampled_from(["12+34=", "347+215=", "1+1=", "99-1=", "3?4=", "123*4="])),
    answer=st.one_of(_UNICODE_TEXT, st.sampled_from(["46", "562", "2", "98", "<", "492"])),
    skill=st.sampled_from(_SKILLS),
)
_plans = st.one_of(
    st.dictionaries(st.sampled_from(_SKILLS), _counts, max_size=3).map(CountPlan),
    st.dictionaries(st.one_of(st.sampled_from(_SKILLS), _UNICODE_TEXT), _counts, max_size=3),
    st.lists(_counts, min_size=7, max_size=9),
    st.lists(st.one_of(_example, st.builds(dict, question=_UNICODE_TEXT, answer=_UNICODE_TEXT)), max_size=6).map(
        ExamplesPlan
    ),
    _UNICODE_TEXT,
)


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=_plans)
def test_referee_invariants_hold_for_arbitrary_plans(env, plan):
    base = env.unwrapped
    if not base._started or base.episode_over:
        env.reset(seed=0)
    budget_before, step_before = base.budget_left, base.step_index
    try:
        obs, _, _, _, info = env.step(plan)
    except Exception as err:  # every refusal is one of the library's errors, never a raw library exception
        assert isinstance(err, Error), f"{type(err).__name__}: {err}"
        assert (base.budget_left, base.step_index) == (budget_before, step_before)
        return
    spent = budget_before - base.budget_left
    assert 0 <= spent <= base.config.budget and spent == info["budget_spent"]
    assert env.observation_space.contains(obs)
    assert len(base.last_training_data) <= spent
    for example in base.last_training_data:
        assert _ARITH.verify(example).ok  # nothing unverified is trained on
        assert not base.splits.is_heldout(example.question)  # no held-out key enters training


def test_the_llm_data_engines_output_is_verified_again_and_its_mark_cannot_pass_a_wrong_answer():
    """The referee trusts an LLM data engine's self-consistency mark only for what the task cannot verify: an
    engine that lets a wrong answer through (a bug, or a plug-in engine) still has it rejected."""
    from skills.llm.data_engine import SELF_CONSISTENCY, VERIFIED_BY

    env = gym.make(
        "envgym/SkillList-v0",
        steps=2,
        budget=8,
        n_val=5,
        n_test=5,
        data_engine="llm",
        data_engine_llm={"base_url": "http://127.0.0.1:9/v1"},  # never asked: the engine's output is scripted
    )
    env.reset(seed=0)
    base = env.unwrapped
    marked = {VERIFIED_BY: SELF_CONSISTENCY}
    right = next(f"{a}+38=" for a in range(47, 99) if not base.splits.is_heldout(f"{a}+38="))
    made = [
        Example("55+55=", "111", "add_carry", marked),
        Example(right, str(int(right[:2]) + 38), "add_carry", marked),
    ]
    base.data_engine.for_counts = lambda counts, rng: (list(made), {})
    _, _, _, _, info = env.step({"add_carry": 2})
    assert info["rejections"] == {"wrong_answer": 1} and info["self_consistent_accepted"] == 0
    assert [ex.question for ex in base.last_training_data] == [right]
    env.close()
