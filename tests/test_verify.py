"""Independent verification of untrusted (teacher) examples, and held-out keys that catch near-copies.

A teacher is user code or an LLM: its examples are trained on only when the task re-solves them itself, and
any near-copy of a validation/test question (case, whitespace, punctuation, full-width, zero-width, dashes)
must get the original's held-out key, or be rejected by verify().
"""

from __future__ import annotations

import hashlib
import pickle
import re
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skills import ArithmeticTask, Example, TaskSplits, Verdict, Verification, skill_names, verify_example
from skills.reasoning_gym_task import RESOLVERS, ReasoningGymTask
from skills.task import normalize_question

ARITH = ArithmeticTask()
RG_DATASETS = ["basic_arithmetic", "chain_sum", "gcd", "lcm", "products"]
PROPERTY = settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def rg() -> ReasoningGymTask:
    return ReasoningGymTask([*RG_DATASETS, "leg_counting"])


# --- arithmetic -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("skill", skill_names(ARITH))
def test_generated_examples_verify_under_their_skill_only(skill: str) -> None:
    others = [name for name in skill_names(ARITH) if name != skill]
    for ex in ARITH.generate(skill, 300, np.random.default_rng(11)):
        assert ARITH.verify(ex).verdict is Verdict.CORRECT, (ex, ARITH.verify(ex))
        for other in others:
            verdict = ARITH.verify(Example(ex.question, ex.answer, other))
            assert verdict.verdict is Verdict.WRONG_SKILL, (ex, other, verdict)
            assert repr(skill) in verdict.detail  # names the skill the question does belong to


def test_commuted_operands_stay_in_the_skill() -> None:
    assert ARITH.verify(Example("7*317=", "2219", "mul_1d")).ok
    assert ARITH.verify(Example("3+12+4=", "19", "sum3")).ok
    assert ARITH.verify(Example("47 + 38 =", " 85\n", "add_carry")).ok  # ASCII spaces, as score() allows


@pytest.mark.parametrize(
    ("example", "verdict", "detail"),
    [
        (Example("12+39=", "50", "add_carry"), Verdict.WRONG_ANSWER, "expects answer '51'"),
        (Example("12+34=", "46", "mul_1d"), Verdict.WRONG_SKILL, "belongs to no arithmetic skill"),
        (Example("123+456=", "579", "add_carry"), Verdict.WRONG_SKILL, "belongs to skill 'add_no_carry'"),
        (Example("555-511=", "44", "sub_no_borrow"), Verdict.WRONG_SKILL, "b and a-b in 100..999"),
        (Example("120+3+4=", "127", "sum3"), Verdict.WRONG_SKILL, "one term in 10..99"),
        (Example("317*1=", "317", "mul_1d"), Verdict.WRONG_SKILL, "2..9"),
        (Example("１８+２９=", "47", "add_carry"), Verdict.MALFORMED, "FULLWIDTH DIGIT ONE"),
        (Example("18+٢٩=", "47", "add_carry"), Verdict.MALFORMED, "ARABIC-INDIC DIGIT TWO"),
        (Example("18+29\u200b=", "47", "add_carry"), Verdict.MALFORMED, "ZERO WIDTH SPACE"),
        (Example("018+029=", "47", "add_carry"), Verdict.MALFORMED, "leading zeros"),
        (Example("18+29=?", "47", "add_carry"), Verdict.MALFORMED, "like '47+38='"),
        (Example("18-2+9=", "25", "add_carry"), Verdict.MALFORMED, "three terms only in a sum"),
        (Example("What is 18+29?", "47", "add_carry"), Verdict.MALFORMED, "ASCII digits"),
        (Example("", "", "add_carry"), Verdict.MALFORMED, "like '47+38='"),
    ],
)
def test_arithmetic_verdicts(example: Example, verdict: Verdict, detail: str) -> None:
    result = ARITH.verify(example)
    assert result.verdict is verdict and detail in result.detail, result
    assert not result.ok
    assert verify_example(ARITH, example) == result


def test_a_ten_thousand_digit_sum_is_malformed_at_once() -> None:
    for question in ("1" * 10_000 + "+1=", "1+" + "9" * 10_000 + "=", "1" * 50 + "+1="):
        start = time.perf_counter()
        result = ARITH.verify(Example(question, "2", "add_carry"))
        assert result.verdict is Verdict.MALFORMED
        assert ARITH.score(Example(question, "2", "add_carry"), "2") == 0.0
        assert ARITH.heldout_key(question)  # no "Exceeds the limit (4300 digits)" ValueError
        assert time.perf_counter() - start < 0.5


def test_unknown_skill_is_an_unknown_name() -> None:
    with pytest.raises(ValueError, match="Did you mean 'add_carry'"):
        ARITH.verify(Example("18+29=", "47", "add_cary"))
    with pytest.raises(ValueError, match="Unknown arithmetic skill 'mul_1d'"):
        ArithmeticTask(["add_carry"]).verify(Example("317*7=", "2219", "mul_1d"))


@given(question=st.text(max_size=80), answer=st.text(max_size=10), skill=st.sampled_from(skill_names(ARITH)))
@PROPERTY
def test_arithmetic_never_raises_on_any_string(question: str, answer: str, skill: str) -> None:
    assert ARITH.score(Example(question, answer, skill), answer) in (0.0, 1.0)
    assert isinstance(ARITH.verify(Example(question, answer, skill)), Verification)
    assert isinstance(ARITH.heldout_key(question), str)


# The held-out keys of today's generated questions must never change: the shipped default student was trained
# on a curriculum filtered with them (`envgym build-student --check` rebuilds it), and the generators must keep
# drawing the same questions from the same rng.


def _reference_key(question: str) -> str:
    """ArithmeticTask.heldout_key as it was before verification was added (the reference for canonical forms)."""
    pattern = re.compile(r"^\s*(\d+)\s*([-+*?])\s*(\d+)\s*(?:\+\s*(\d+)\s*)?=\s*$")
    match = pattern.match(question)
    if match is None:
        return " ".join(question.split())
    a, op, b, c = match.groups()
    if op in "+*":
        terms = sorted(int(t) for t in (a, b, c) if t is not None)
        return op.join(str(t) for t in terms) + "="
    return f"{int(a)}{op}{int(b)}="


# Computed with the code before this change: TASK.generate(skill, 6, np.random.default_rng(2024)).
EXPECTED_KEYS = {
    "add_no_carry": [
        ("302+225=", "225+302="),
        ("879+120=", "120+879="),
        ("280+201=", "201+280="),
        ("239+410=", "239+410="),
        ("165+434=", "165+434="),
        ("405+123=", "123+405="),
    ],
    "add_carry": [
        ("31+70=", "31+70="),
        ("18+29=", "18+29="),
        ("38+37=", "37+38="),
        ("91+81=", "81+91="),
        ("92+99=", "92+99="),
        ("88+17=", "17+88="),
    ],
    "add_3d_carry": [
        ("317+708=", "317+708="),
        ("183+292=", "183+292="),
        ("385+378=", "378+385="),
        ("917+819=", "819+917="),
        ("923+996=", "923+996="),
        ("881+170=", "170+881="),
    ],
    "sum3": [
        ("31+7+1=", "1+7+31="),
        ("29+3+3=", "3+3+29="),
        ("91+8+9=", "8+9+91="),
        ("99+1+2=", "1+2+99="),
        ("88+1+2=", "1+2+88="),
        ("26+9+4=", "4+9+26="),
    ],
    "sub_no_borrow": [
        ("527-225=", "527-225="),
        ("999-120=", "999-120="),
        ("481-201=", "481-201="),
        ("649-410=", "649-410="),
        ("599-434=", "599-434="),
        ("528-123=", "528-123="),
    ],
    "sub_borrow": [
        ("385-378=", "385-378="),
        ("917-819=", "917-819="),
        ("922-423=", "922-423="),
        ("337-252=", "337-252="),
        ("820-655=", "820-655="),
        ("987-194=", "987-194="),
    ],
    "compare": [
        ("317?708=", "317?708="),
        ("183?292=", "183?292="),
        ("385?378=", "385?378="),
        ("917?819=", "917?819="),
        ("923?996=", "923?996="),
        ("170?228=", "170?228="),
    ],
    "mul_1d": [
        ("317*7=", "7*317="),
        ("183*3=", "3*183="),
        ("385*4=", "4*385="),
        ("917*8=", "8*917="),
        ("923*9=", "9*923="),
        ("170*3=", "3*170="),
    ],
}
# sha256 over "question\tkey\tanswer\n" of 2000 questions per skill drawn in skill order from default_rng(7),
# computed with the code before this change.
EXPECTED_DIGEST = "748e09a856a14b1a81c9412239efb409dffcc3a53691e7eecb491592ff4d9daa"


@pytest.mark.parametrize("skill", skill_names(ARITH))
def test_generated_questions_and_their_keys_are_unchanged(skill: str) -> None:
    examples = ARITH.generate(skill, 6, np.random.default_rng(2024))
    assert [(ex.question, ARITH.heldout_key(ex.question)) for ex in examples] == EXPECTED_KEYS[skill]
    for ex in ARITH.generate(skill, 500, np.random.default_rng(5)):
        assert ARITH.heldout_key(ex.question) == _reference_key(ex.question)


def test_keys_of_a_large_sample_are_unchanged() -> None:
    digest = hashlib.sha256()
    rng = np.random.default_rng(7)
    for skill in skill_names(ARITH):
        for ex in ARITH.generate(skill, 2000, rng):
            digest.update(f"{ex.question}\t{ARITH.heldout_key(ex.question)}\t{ex.answer}\n".encode())
    assert digest.hexdigest() == EXPECTED_DIGEST


@given(
    op=st.sampled_from("+-*?"),
    terms=st.lists(st.integers(0, 10**15), min_size=2, max_size=3),
    spaces=st.lists(st.sampled_from(["", " ", "  ", "\t"]), min_size=8, max_size=8),
)
@PROPERTY
def test_keys_of_the_canonical_format_match_the_reference(op: str, terms: list[int], spaces: list[str]) -> None:
    if len(terms) == 3 and op != "+":
        terms = terms[:2]
    canonical = op.join(map(str, terms)) + "="
    assert ARITH.heldout_key(canonical) == _reference_key(canonical)
    spaced = spaces[0] + f"{spaces[1]}{op}{spaces[2]}".join(map(str, terms)) + spaces[3] + "=" + spaces[4]
    assert ARITH.heldout_key(spaced) == _reference_key(canonical)


def test_compatibility_forms_share_the_canonical_key() -> None:
    for variant in ("４７+３８=", "47 + 38 =", "47\u200b+38=", "٤٧+٣٨=", "38+47=", "047+38=", "\u3000 47+38=\n"):
        assert ARITH.heldout_key(variant) == "38+47=", variant
    assert ARITH.heldout_key("527–225=") == ARITH.heldout_key("527−225=") == "527-225="
    assert ARITH.heldout_key("317？708＝") == "317?708="


# --- reasoning gym --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dataset", RG_DATASETS)
def test_rg_generated_items_verify_and_wrong_answers_do_not(rg: ReasoningGymTask, dataset: str) -> None:
    others = [name for name in RG_DATASETS if name != dataset]
    fresh = ReasoningGymTask(RG_DATASETS)  # no cached entries: the verdict comes from the question alone
    for ex in rg.generate(dataset, 60, np.random.default_rng(3)):
        assert rg.verify(ex).ok and fresh.verify(ex).ok, (ex, rg.verify(ex))
        wrong = str(int(ex.answer) + 1)
        assert rg.verify(Example(ex.question, wrong, dataset)).verdict is Verdict.WRONG_ANSWER
        for other in others:
            assert rg.verify(Example(ex.question, ex.answer, other)).verdict is Verdict.WRONG_SKILL


@pytest.mark.parametrize(
    ("example", "verdict", "detail"),
    [
        (
            Example("State the final answer to the following arithmetic problem: 12 + 30 =", "99", "chain_sum"),
            Verdict.WRONG_ANSWER,
            "expects '42'",
        ),
        (Example("What colour is the sky?", "banana", "chain_sum"), Verdict.UNVERIFIABLE, "expects the template"),
        (Example("What colour is the sky?", "banana", "leg_counting"), Verdict.UNVERIFIABLE, "no independent"),
        (Example("Calculate 12 + 30.", "42", "chain_sum"), Verdict.WRONG_SKILL, "'basic_arithmetic' question"),
        (
            Example("Find the Least Common Multiple (LCM) of these numbers: 4, 6", "12", "gcd"),
            Verdict.WRONG_SKILL,
            "'lcm' question",
        ),
        (
            Example(
                "Solve the following multiplication: 3 * 4. Give only the result as your final answer.",
                "12",
                "basic_arithmetic",
            ),
            Verdict.WRONG_SKILL,
            "'products' question",
        ),
        (Example("Calculate 7 / 0.", "0", "basic_arithmetic"), Verdict.MALFORMED, "divides by zero"),
        (Example("Calculate 2 ** 10.", "1024", "basic_arithmetic"), Verdict.MALFORMED, "Pow"),
        (Example("Calculate 6 // 4.", "1", "basic_arithmetic"), Verdict.MALFORMED, "FloorDiv"),
        (Example("Calculate __import__('os').getpid().", "1", "basic_arithmetic"), Verdict.MALFORMED, "'_'"),
        (Example("Calculate " + "99999 * " * 50 + "9.", "0", "basic_arithmetic"), Verdict.MALFORMED, "magnitude"),
        (
            Example("Calculate " + "(" * 200 + "1" + ")" * 200 + ".", "1", "basic_arithmetic"),
            Verdict.MALFORMED,
            "nested",
        ),
        (Example("Calculate 1" + " + 1" * 1000 + ".", "1001", "basic_arithmetic"), Verdict.MALFORMED, "characters"),
        (
            Example("State the final answer to the following arithmetic problem: １２ + 30 =", "42", "chain_sum"),
            Verdict.MALFORMED,
            "'１'",
        ),
        (
            Example(
                "Find the Greatest Common Divisor (GCD) of these numbers: 0, 6. "
                "Give only the GCD as your final answer.",
                "6",
                "gcd",
            ),
            Verdict.MALFORMED,
            "positive integers",
        ),
        (
            Example("Find the Least Common Multiple (LCM) of these numbers: 4, 6.", "12", "lcm"),
            Verdict.MALFORMED,
            "'4, 6.'",
        ),
    ],
)
def test_rg_verdicts(rg: ReasoningGymTask, example: Example, verdict: Verdict, detail: str) -> None:
    result = rg.verify(example)
    assert result.verdict is verdict and detail in result.detail, result


def test_rg_judges_answers_with_the_datasets_own_scorer(rg: ReasoningGymTask) -> None:
    question = "State the final answer to the following arithmetic problem: 1000 + 30 - 4 ="
    for answer in ("1026", "+01,026.00", " 1026"):  # chain_sum's score_answer compares decimals
        assert rg.verify(Example(question, answer, "chain_sum")).ok, answer
    gcd = "Find the Greatest Common Divisor (GCD) of these numbers: 12, 18. Give only the GCD as your final answer."
    assert rg.verify(Example(gcd, "6", "gcd")).ok
    assert rg.verify(Example(gcd, "6.0", "gcd")).verdict is Verdict.WRONG_ANSWER  # gcd compares strings exactly
    # basic_arithmetic's gold is eval(expression.replace("/", "//")): floor division.
    assert rg.verify(Example("Calculate -7 / 2.", "-4", "basic_arithmetic")).ok
    assert rg.verify(Example("What is ( 3 - -2 ) * -( 4 )?", "-20", "basic_arithmetic")).ok


def test_rg_ignores_the_examples_metadata_and_cache(rg: ReasoningGymTask) -> None:
    ex = rg.generate("gcd", 1, np.random.default_rng(9))[0]
    lie = Example(ex.question, str(int(ex.answer) + 1), "gcd", {**ex.metadata, "result": int(ex.answer) + 1})
    assert rg.verify(lie).verdict is Verdict.WRONG_ANSWER  # the cached original entry is not consulted either
    assert pickle.loads(pickle.dumps(rg)).verify(ex) == rg.verify(ex) == ReasoningGymTask(["gcd"]).verify(ex)


@pytest.mark.parametrize(
    "config", [{"format_style": "natural"}, {"whitespace": "random"}, {"whitespace": "no_space"}, {"max_terms": 3}]
)
def test_rg_basic_arithmetic_configs_verify(config: dict) -> None:
    task = ReasoningGymTask(["basic_arithmetic"], configs={"basic_arithmetic": config})
    for ex in task.generate("basic_arithmetic", 40, np.random.default_rng(1)):
        assert task.verify(ex).ok, (ex, task.verify(ex))


def test_rg_basic_arithmetic_without_parentheses_is_unverifiable() -> None:
    # The dataset then computes its gold left to right, so its answers do not follow from its questions.
    task = ReasoningGymTask(["basic_arithmetic"], configs={"basic_arithmetic": {"allow_parentheses": False}})
    ex = task.generate("basic_arithmetic", 1, np.random.default_rng(0))[0]
    assert task.verify(ex).verdict is Verdict.UNVERIFIABLE


def test_rg_unresolvable_datasets_and_unknown_skills(rg: ReasoningGymTask) -> None:
    assert "leg_counting" not in RESOLVERS
    for ex in rg.generate("leg_counting", 5, np.random.default_rng(0)):
        assert rg.verify(ex).verdict is Verdict.UNVERIFIABLE
    with pytest.raises(ValueError, match="Unknown skill 'spell_backward'"):
        rg.verify(Example("Spell this word backward: cat", "tac", "spell_backward"))


@given(question=st.text(max_size=120), answer=st.text(max_size=10), skill=st.sampled_from(RG_DATASETS))
@PROPERTY
def test_rg_verify_never_raises_on_any_string(rg: ReasoningGymTask, question: str, answer: str, skill: str) -> None:
    assert isinstance(rg.verify(Example(question, answer, skill)), Verification)
    assert isinstance(rg.heldout_key(question), str)


# --- held-out keys against near-copies ------------------------------------------------------------------

_WHITESPACE = [" ", "  ", "\t", "\n", "\u00a0", "\u2003", "\u3000"]
_ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"]
_PUNCTUATION = ["?", ".", "!", ",", ";", ":", "'", '"', "…", "¿", "¡", "(", ")", "[", "]", "«", "»", "\u201c"]
_DASHES = ["\u2013", "\u2014", "\u2212", "\u2010", "\u2011", "\uff0d", "\ufe63"]
_WRAPPERS = [("**", "**"), ("`", "`"), ("> ", ""), ("_", "_"), ("*", "*"), ("", " =")]


def _full_width(text: str) -> str:
    return "".join(
        chr(ord(char) + 0xFEE0) if "!" <= char <= "~" else "\u3000" if char == " " else char for char in text
    )


@st.composite
def perturbed(draw: st.DrawFn, question: str) -> str:
    """``question`` after 1-6 random near-copy edits a teacher (or an LLM paraphrasing lightly) might make."""
    text = question
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["case", "space+", "space-", "punct", "full", "zero", "dash", "wrap"]))
        cut = draw(st.integers(0, len(text)))
        if kind == "case":
            end = draw(st.integers(cut, len(text)))
            change = draw(st.sampled_from([str.upper, str.lower, str.swapcase, str.title]))
            text = text[:cut] + change(text[cut:end]) + text[end:]
        elif kind == "space+":
            text = text[:cut] + draw(st.sampled_from(_WHITESPACE)) + text[cut:]
        elif kind == "space-":
            text = text[:cut] + text[cut:].replace(" ", "", 1)
        elif kind == "punct":
            mark = draw(st.sampled_from(_PUNCTUATION))
            text = draw(st.sampled_from([mark + text, text + mark, text[:cut] + mark + text[cut:]]))
        elif kind == "full":
            end = draw(st.integers(cut, len(text)))
            text = text[:cut] + _full_width(text[cut:end]) + text[end:]
        elif kind == "zero":
            text = text[:cut] + draw(st.sampled_from(_ZERO_WIDTH)) + text[cut:]
        elif kind == "dash":
            text = text.replace("-", draw(st.sampled_from(_DASHES)))
        else:
            before, after = draw(st.sampled_from(_WRAPPERS))
            text = before + text + after
    return text


@pytest.fixture(scope="module")
def rg_val_questions(rg: ReasoningGymTask) -> list[Example]:
    splits = TaskSplits.build(ReasoningGymTask(RG_DATASETS), n_val=8, n_test=1, split_seed=0)
    return splits.all_questions("val")


@pytest.fixture(scope="module")
def arith_val_questions() -> list[Example]:
    return TaskSplits.build(ARITH, n_val=25, n_test=1, split_seed=0).all_questions("val")


@given(data=st.data())
@PROPERTY
def test_rg_near_copies_share_the_heldout_key(rg: ReasoningGymTask, rg_val_questions, data: st.DataObject) -> None:
    original = data.draw(st.sampled_from(rg_val_questions))
    variant = data.draw(perturbed(original.question))
    assert rg.heldout_key(variant) == rg.heldout_key(original.question), variant


@given(data=st.data())
@PROPERTY
def test_arithmetic_near_copies_share_the_key_or_are_rejected(arith_val_questions, data: st.DataObject) -> None:
    original = data.draw(st.sampled_from(arith_val_questions))
    variant = data.draw(perturbed(original.question))
    same_key = ARITH.heldout_key(variant) == ARITH.heldout_key(original.question)
    assert same_key or not ARITH.verify(Example(variant, original.answer, original.skill)).ok, variant


def test_normalize_question_merges_near_copies() -> None:
    base = normalize_question("What is 12 - 3?")
    assert base == "whatis12-3"
    for variant in (
        "what is 12 - 3",
        "WHAT IS 12-3?!",
        "What\u200b is １２ – 3 ?",
        "«What is 12\u22123»",
        "What is 1,2-3.",
    ):
        assert normalize_question(variant) == base, variant
    for variant in ("**What is 12 - 3?**", "> `What is 12 - 3`", "What is **12** - 3", "_What is 12 - 3_"):
        assert normalize_question(variant) == base, variant  # Markdown from an LLM teacher
    assert normalize_question("3 × 4 ÷ 2 = ?") == normalize_question("3*4/2=") == "3*4/2"
    assert normalize_question("a < b + c") != normalize_question("a > b + c")  # math symbols are kept


# --- pickling -------------------------------------------------------------------------------------------


def test_tasks_pickle() -> None:
    for task in (ArithmeticTask(), ArithmeticTask(["sum3", "mul_1d"])):
        clone = pickle.loads(pickle.dumps(task))
        assert skill_names(clone) == skill_names(task)
        for skill in skill_names(task):
            assert clone.generate(skill, 20, np.random.default_rng(0)) == task.generate(
                skill, 20, np.random.default_rng(0)
            )
        assert clone.verify(Example("12+34=", "46", "mul_1d")) == task.verify(Example("12+34=", "46", "mul_1d"))
    rg = ReasoningGymTask(["chain_sum", "gcd"])
    ex = rg.generate("chain_sum", 3, np.random.default_rng(0))[0]  # with a filled cache
    clone = pickle.loads(pickle.dumps(rg))
    assert clone.name == rg.name and clone.verify(ex).ok and clone.score(ex, ex.answer) == 1.0
