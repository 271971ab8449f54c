"""Every refusal of the referee, word for word: the message is what a teacher's author reads, so it must name what
was expected, what was given and where (the index, the field, the plan). Matching a fragment lets a message lose
its index, its field name or its hint unnoticed; these compare the whole text (mutation testing found such
losses one at a time, see CONTRIBUTING.md)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import gymnasium as gym
import pytest

import envgym  # noqa: F401  (registers the environments)
from envgym import CountPlan, ExamplesPlan, PreferencePlan, ReweightPlan, SynthesisPlan
from envgym.error import BudgetExceeded, DamagedCheckpoint, InvalidConfig, InvalidPlan, ResetNeeded, UnknownName
from envgym.plans import validate_examples, validate_plan, validate_training_items
from skills import Example, PreferencePair

SKILLS = ["add", "sub", "mul"]
KINDS = ["counts", "examples", "reweight", "synthesize", "preferences", "custom"]
FROM = "Expects skills from: add, sub, mul."


@dataclass
class Custom:
    """A registered plan kind's plan: only ``kind`` and ``size`` are the referee's business."""

    size: object = 1
    kind: str = "custom"


@dataclass
class Misspelt:
    kind: str = "reweigth"


def _pair(**fields):
    return {"question": "q", "chosen": "c", "rejected": "r", "skill": "add", **fields}


def exactly(message: str) -> str:
    return f"^{re.escape(message)}$"


PLAN_REFUSALS = [
    (
        ReweightPlan(5),
        "Expects a reweight plan with exactly one of skill_weights ({skill: weight}) and example_weights "
        "({pool index: weight}); actual skill_weights=None (NoneType), example_weights=None (NoneType).",
    ),
    (
        ReweightPlan(5, skill_weights={"add": 1}, example_weights={0: 1}),
        "Expects a reweight plan with exactly one of skill_weights ({skill: weight}) and example_weights "
        "({pool index: weight}); actual skill_weights={'add': 1} (dict), example_weights={0: 1} (dict).",
    ),
    (ReweightPlan(5, skill_weights=[1]), "Expects skill_weights to be a dict; actual [1] (list)."),
    (
        ReweightPlan(5, skill_weights={"ad": 1}),
        f"Plan's skill_weights name unknown skill 'ad'. Did you mean 'add'? {FROM}",
    ),
    (
        ReweightPlan(5, skill_weights={"add": -1}),
        "Expects a finite, non-negative weight for skill 'add'; actual -1 (int).",
    ),
    (ReweightPlan(5, example_weights=[1]), "Expects example_weights to be a dict; actual [1] (list)."),
    (
        ReweightPlan(5, example_weights={-1: 1}),
        "Expects a non-negative count for a pool index of example_weights; actual -1.",
    ),
    (
        ReweightPlan(5, example_weights={3: float("nan")}),
        "Expects a finite, non-negative weight for pool example 3; actual nan (float).",
    ),
    (
        ReweightPlan(1.5, skill_weights={}),
        "Expects a whole number of examples for the size of a 'reweight' plan; actual 1.5 (float).",
    ),
    (SynthesisPlan("add"), "Expects SynthesisPlan.requests to be (skill, n) pairs; actual 'add' (str)."),
    (
        SynthesisPlan((("add",),)),
        "Expects synthesis request 0 to be a (skill, n) pair; actual ('add',) (tuple).",
    ),
    (
        SynthesisPlan((("add", 1), ("ad", 2))),
        f"Synthesis request 1 names unknown skill 'ad'. Did you mean 'add'? {FROM}",
    ),
    (SynthesisPlan((("add", -2),)), "Expects a non-negative count for synthesis request 0; actual -2."),
    (PreferencePlan(pairs="x"), "Expects PreferencePlan.pairs to be a list of examples; actual 'x' (str)."),
    (
        PreferencePlan(examples={"a": 1}),
        "Expects PreferencePlan.examples to be a list of examples; actual {'a': 1} (dict).",
    ),
    (
        PreferencePlan(pairs=[{"question": "q"}]),
        "Expects preference pair 0 to have keys question, chosen, rejected, skill; actual keys ['question'] "
        "(missing ['chosen', 'rejected', 'skill']).",
    ),
    (
        PreferencePlan(pairs=[5]),
        "Expects preference pair 0 to be a skills.PreferencePair or a dict with question, chosen, rejected, skill; "
        "actual 5 (int).",
    ),
    (
        PreferencePlan(pairs=[_pair(), _pair(chosen=1)]),
        "Expects preference pair 1's chosen to be a string; actual 1 (int).",
    ),
    (
        PreferencePlan(pairs=[_pair(metadata=[1])]),
        "Expects preference pair 0's metadata to be a dict; actual [1] (list).",
    ),
    (
        PreferencePlan(pairs=[_pair(skill="mull")]),
        f"Preference pair 0 names unknown skill 'mull'. Did you mean 'mul'? {FROM}",
    ),
    (
        [{"question": "q"}],
        "Expects example 0 to have keys question, answer, skill; actual keys ['question'] "
        "(missing ['answer', 'skill']).",
    ),
    (
        [Example("q", "a", "add"), Example("q", "a", "sum")],
        f"Example 1 names unknown skill 'sum'. Did you mean 'sub'? {FROM}",
    ),
    (
        ExamplesPlan([Example("q", "a", "add"), 7]),
        "Expects example 1 to be a skills.Example or a dict with question, answer, skill; actual 7 (int).",
    ),
    (ExamplesPlan("abc"), "Expects ExamplesPlan.examples to be a list of examples; actual 'abc' (str)."),
    (CountPlan(counts=[1]), "Expects CountPlan.counts to be a {skill: count} dict; actual [1] (list)."),
    ({"ad": 1}, f"Plan names unknown skill 'ad'. Did you mean 'add'? {FROM}"),
    ({"zzz": 1}, f"Plan names unknown skill 'zzz'. {FROM}"),
    ({"add": 1.5}, "Expects a whole number of examples for skill 'add'; actual 1.5 (float)."),
    ({"add": True}, "Expects a whole number of examples for skill 'add'; actual True (bool)."),
    (
        {"add": "x" * 80},
        f"Expects a whole number of examples for skill 'add'; actual '{'x' * 59}... (str).",
    ),
    (  # a value whose repr is 60 characters is shown whole; one longer is cut at 60
        {"add": "x" * 58},
        f"Expects a whole number of examples for skill 'add'; actual '{'x' * 58}' (str).",
    ),
    (["1", "2", "3"], "Expects 3 numeric per-skill budget shares; actual ['1', '2', '3'] (list) (dtype <U1)."),
    (
        [0.5, 0.5],
        "Expects an action of shape (3,), one budget share per skill (add, sub, mul); actual shape (2,).",
    ),
    (
        [0.12345, -1.0, 0.0],
        "Expects non-negative, finite budget shares; actual [ 0.123 -1.     0.   ]. For exact counts pass a "
        "{skill: count} dict or a CountPlan.",
    ),
    (
        Misspelt(),
        "Expects a plan kind among ['counts', 'custom', 'examples', 'preferences', 'reweight', 'synthesize']; "
        "actual 'reweigth'. Did you mean 'reweight'? Register new kinds with "
        "env.unwrapped.register_plan_kind(kind, handler).",
    ),
    (
        object,
        "Expects a plan: an array of per-skill budget shares, a {skill: count} dict, a CountPlan, an ExamplesPlan "
        "or a registered plan kind; actual <class 'object'> (type).",
    ),
    (Custom(size=-1), "Expects a non-negative count for the size of a 'custom' plan; actual -1."),
    (
        Custom(size=float("nan")),
        "Expects a whole number of examples for the size of a 'custom' plan; actual nan (float).",
    ),
]


@pytest.mark.parametrize(("action", "message"), PLAN_REFUSALS, ids=range(len(PLAN_REFUSALS)))
def test_every_plan_refusal_says_what_was_expected_and_what_was_given(action, message):
    with pytest.raises(InvalidPlan, match=exactly(message)):
        validate_plan(action, SKILLS, KINDS, allowed=10)


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (
            {"add": 11},
            "Expects a plan of at most 10 examples this step (the budget left); actual 11. Scale the plan down.",
        ),
        (
            ExamplesPlan([Example("q", "a", "add")] * 11 + ["not an example"]),
            "Expects a plan of at most 10 examples this step (the budget left); actual 12. Scale the plan down.",
        ),
        (
            Custom(size=11.0),
            "Expects a plan of at most 10 examples this step (the budget left); actual 11. Scale the plan down.",
        ),
    ],
)
def test_a_plan_over_budget_is_refused_by_its_size_before_its_contents_are_read(action, message):
    with pytest.raises(BudgetExceeded, match=exactly(message)):
        validate_plan(action, SKILLS, KINDS, allowed=10, why=" (the budget left)")


def test_what_a_handler_returned_is_refused_by_what_it_is():
    with pytest.raises(
        InvalidPlan, match=exactly("Expects the training data to be a list of examples; actual 'x' (str).")
    ):
        validate_training_items("x", SKILLS)
    with pytest.raises(InvalidPlan, match=exactly("Expects the examples to be a list of examples; actual 3 (int).")):
        validate_examples(3, SKILLS)
    # A dict with a "chosen" key is read as a preference pair, and refused as one.
    message = (
        "Expects preference pair 1 to have keys question, chosen, rejected, skill; actual keys ['chosen'] "
        "(missing ['question', 'rejected', 'skill'])."
    )
    with pytest.raises(InvalidPlan, match=exactly(message)):
        validate_training_items([Example("q", "a", "add"), {"chosen": "c"}], SKILLS)


def test_validated_plans_are_clean_copies_in_the_skills_order():
    plan = validate_plan(ReweightPlan(4.0, skill_weights={"mul": 2, "add": 1}), SKILLS, KINDS, allowed=10)
    assert plan == ReweightPlan(4, skill_weights={"add": 1.0, "sub": 0.0, "mul": 2.0})
    assert list(plan.skill_weights) == SKILLS and type(plan.size) is int
    plan = validate_plan(ReweightPlan(2, example_weights={5.0: 1, 7: 0.5}), SKILLS, KINDS, allowed=10)
    assert plan.example_weights == {5: 1.0, 7: 0.5} and all(type(i) is int for i in plan.example_weights)
    plan = validate_plan(SynthesisPlan([["mul", 2.0], ("add", 1)]), SKILLS, KINDS, allowed=10)
    assert plan.requests == (("mul", 2), ("add", 1)) and plan.size == 3
    examples = [{"question": "q", "answer": "a", "skill": "sub", "metadata": {"k": 1}}]
    plan = validate_plan(examples, SKILLS, KINDS, allowed=10)
    assert plan.examples == [Example("q", "a", "sub", metadata={"k": 1})]
    examples[0]["metadata"]["k"] = 2  # the plan holds its own copy of what the teacher sent
    assert plan.examples[0].metadata == {"k": 1}
    pairs = PreferencePlan([_pair()], [Example("q", "a", "mul")])
    assert validate_plan(pairs, SKILLS, KINDS, allowed=10) == PreferencePlan(
        (PreferencePair("q", "c", "r", "add"),), (Example("q", "a", "mul"),)
    )
    assert validate_plan([0, 0, 0], SKILLS, KINDS, allowed=10) == CountPlan({"add": 0, "sub": 0, "mul": 0})
    assert validate_plan([], SKILLS, KINDS, allowed=10) == ExamplesPlan([])
    custom = Custom(size=3)
    assert validate_plan(custom, SKILLS, KINDS, allowed=10) is custom


# -- the environment's own refusals ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def env():
    env = gym.make("envgym/SkillList-v0", steps=2, budget=8, n_val=5, n_test=5)
    env.reset(seed=0)
    yield env
    env.close()


def test_the_environments_refusals_name_the_fix(env):
    core = env.unwrapped
    with pytest.raises(InvalidConfig, match=exactly("Expects a non-empty string plan kind; actual ''.")):
        core.register_plan_kind("", lambda plan: ([], {}))
    with pytest.raises(InvalidConfig, match=exactly("Expects a new plan kind; 'counts' is already registered.")):
        core.register_plan_kind("counts", lambda plan: ([], {}))
    message = "Unknown reset option 'checkpont'. Did you mean 'checkpoint'? Expects one of: checkpoint."
    with pytest.raises(UnknownName, match=exactly(message)):
        core.reset(options={"checkpont": "x"})
    for seed in (-1, True, 1.5, "3"):
        message = f"Expects a seed that is a whole number >= 0, or None; actual {seed!r}."
        with pytest.raises(InvalidConfig, match=exactly(message)):
            core.reset(seed=seed)
    with pytest.raises(InvalidConfig, match=exactly("Expects an EnvSnapshot from env.snapshot(); actual dict.")):
        core.restore({})
    message = (
        "Expects a fixed training pool for per-example weights; this environment draws fresh data. Make it with "
        "pool_size=N or pool_file=PATH, or weigh skills (ReweightPlan(size, skill_weights=...))."
    )
    core.reset(seed=0)
    with pytest.raises(InvalidPlan, match=exactly(message)):
        core.step(ReweightPlan(2, example_weights={0: 1.0}))
    assert core.budget_left == 16 and core.step_index == 0  # 2 steps of 8


def test_stepping_outside_an_episode_says_what_to_call():
    env = gym.make("envgym/SkillList-v0", steps=1, budget=4, n_val=5, n_test=5).unwrapped
    message = "Expects reset() before step(); call env.reset(seed=...) first."
    with pytest.raises(ResetNeeded, match=exactly(message)):
        env.step({"add_carry": 1})
    env.reset(seed=0)
    env.step({"add_carry": 1})
    message = (
        "Expects a running episode; this one ended at step 1 with 3 examples left. Call reset() to start a new one."
    )
    with pytest.raises(ResetNeeded, match=exactly(message)):
        env.step({"add_carry": 1})
    env.close()


def test_a_pool_index_beyond_the_fixed_pool_is_named():
    env = gym.make("envgym/SkillList-v0", steps=2, budget=8, n_val=5, n_test=5, pool_size=16).unwrapped
    env.reset(seed=0)
    message = "Expects pool indices below the pool's size (16); actual [16, 20]."
    with pytest.raises(InvalidPlan, match=exactly(message)):
        env.step(ReweightPlan(2, example_weights={3: 1.0, 20: 1.0, 16: 1.0}))
    assert env.budget_left == 16
    env.close()


def test_a_handler_that_returns_more_than_it_charged_is_named(env):
    core = env.unwrapped
    core.reset(seed=0)
    core.register_plan_kind("liar", lambda plan: ([Example("2+2=", "4", "add_no_carry")] * 3, {}))
    message = (
        "Expects the 'liar' plan handler to return at most the plan's size (2) examples, which is what the budget "
        "is charged; actual 3."
    )
    with pytest.raises(InvalidPlan, match=exactly(message)):
        core.step(Custom(size=2, kind="liar"))


def test_a_damaged_checkpoint_is_named_with_what_is_wrong(env, tmp_path):
    core = env.unwrapped
    core.reset(seed=0)
    core.save_checkpoint(tmp_path)
    (tmp_path / "accumulated.jsonl").write_text("{not json\n")
    with pytest.raises(
        DamagedCheckpoint,
        match=rf"^Checkpoint file '{re.escape(str(tmp_path))}/accumulated\.jsonl' is damaged \(.+\)\.$",
    ):
        core.load_checkpoint(tmp_path)


# -- what a step reports about the data it refereed -------------------------------------------------------------
def test_a_steps_info_reports_each_rejection_with_its_index_skill_reason_and_detail(env):
    core = env.unwrapped
    core.reset(seed=0)
    wrong = Example("123+456=", "580", "add_no_carry")
    plan = [
        Example("123+456=", "579", "add_no_carry"),
        Example("456+123=", "579", "add_no_carry"),  # the same canonical question, commuted
        wrong,
    ]
    _, _, _, _, info = env.step(plan)
    assert info["rejected_examples"] == [
        {
            "index": 1,
            "skill": "add_no_carry",
            "reason": "duplicate",
            "detail": "repeats an earlier example's question ('456+123=')",
        },
        {"index": 2, "skill": "add_no_carry", "reason": "wrong_answer", "detail": core.task.verify(wrong).detail},
    ]
    assert info["rejections"] == {"duplicate": 1, "wrong_answer": 1} and info["rejected"] == 2
    assert info["plan"] == {"kind": "examples", "size": 3}
    assert (info["examples_used"], info["budget_spent"], info["dropped_heldout"], info["unverifiable_accepted"]) == (
        1,
        3,
        0,
        0,
    )
    assert isinstance(info["train_loss"], float) and "preference_loss" not in info
    assert set(info) == set(core._info()) | {
        "plan",
        "examples_used",
        "budget_spent",
        "train_loss",
        "rejected",
        "rejections",
        "rejected_examples",
        "unverifiable_accepted",
        "dropped_heldout",
    }


def test_preference_pairs_are_rejected_as_pairs(env):
    core = env.unwrapped
    core.reset(seed=0)
    pairs = [
        PreferencePair("123+456=", "579", "580", "add_no_carry"),
        PreferencePair("456+123=", "579", "580", "add_no_carry"),  # same question and rejected answer
        PreferencePair("123+456=", "579", "579", "add_no_carry"),  # nothing to prefer
        PreferencePair("123+456=", "579", "581", "add_no_carry"),  # another failing sample of the prompt: kept
        # A rejected answer that fits as text of its own, but not after its question in the student's 128 tokens.
        PreferencePair("123+456=", "579", "4" * 118, "add_no_carry"),
    ]
    _, _, _, _, info = env.step(PreferencePlan(pairs))
    assert info["rejected_examples"] == [
        {
            "index": 1,
            "skill": "add_no_carry",
            "reason": "duplicate",
            "detail": "repeats an earlier pair's question and rejected answer ('456+123=')",
        },
        {
            "index": 2,
            "skill": "add_no_carry",
            "reason": "not_a_preference",
            "detail": "its chosen and rejected answers are the same text",
        },
        {
            "index": 4,
            "skill": "add_no_carry",
            "reason": "unfit_for_student",
            "detail": "the rejected answer: prompt+answer is 129 tokens, over the student's max_length of 128",
        },
    ]
    assert [pair.rejected for pair in core.last_training_data] == ["580", "581"]
    assert info["plan"] == {"kind": "preferences", "pairs": 5, "examples": 0} and info["pairs_planned"] == 5
    assert isinstance(info["preference_loss"], float) and info["train_loss"] == info["preference_loss"]


def test_a_count_plans_info_names_its_counts(env):
    core = env.unwrapped
    core.reset(seed=0)
    _, _, _, _, info = env.step({"add_carry": 3, "sum3": 1})
    assert info["plan"] == {
        "kind": "counts",
        "counts": {skill: {"add_carry": 3, "sum3": 1}.get(skill, 0) for skill in core.skills},
    }
    # The task's generator draws again for what it dropped as held out, so a count plan gets its full count.
    assert info["budget_spent"] == 4 and info["examples_used"] == 4
    assert info["rejected"] == 0 and info["rejected_examples"] == []
