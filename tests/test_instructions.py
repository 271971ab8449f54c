import json
import pickle
import random
import re
import string
from pathlib import Path

import numpy as np
import pytest

from skills import Example, InstructionTask, Task, Verdict, make_task, skill_names, taxonomy, verify_example
from skills.errors import InvalidConfig, InvalidPlan, UnknownName
from skills.instructions import (
    CONSTRAINTS,
    CONTENT_WORDS,
    KEYWORDS,
    MAX_ANSWER_CHARS,
    MAX_QUESTION_CHARS,
    Constraint,
    Request,
    canonical_answer,
    parse,
)

TASK = InstructionTask()
CODES = list(CONSTRAINTS)
TOKENIZER = Path(__file__).resolve().parents[1] / "students" / "weights" / "default" / "tokenizer.json"


@pytest.fixture(scope="module")
def vocab():
    """The single characters the default student's tokenizer knows (its special tokens left out)."""
    tokens = json.loads(TOKENIZER.read_text())["model"]["vocab"]
    return {token for token in tokens if len(token) == 1}


@pytest.fixture(scope="module")
def examples():
    """1,000 generated examples per skill (14,000 in all)."""
    rng = np.random.default_rng(12345)
    return {code: TASK.generate(code, 1000, rng) for code in CODES}


def results(question, response):
    return {r.name: r.passed for r in TASK.check(question, response)}


def test_newline_is_not_in_the_student_vocabulary_so_the_format_has_none(vocab):
    assert "\n" not in vocab and {chr(c) for c in range(32, 127)} <= vocab


def test_word_lists_never_overlap():
    assert len(CONTENT_WORDS) >= 60 and len(set(CONTENT_WORDS)) == len(CONTENT_WORDS)
    assert all(3 <= len(w) <= 5 and w.isalpha() and w.islower() for w in CONTENT_WORDS)
    assert len(KEYWORDS) >= 20 and len(set(KEYWORDS)) == len(KEYWORDS)
    # has/end match substrings (as IFEval's do): no keyword may hide in a content word or the other way round.
    for keyword in KEYWORDS:
        for word in CONTENT_WORDS:
            assert keyword not in word and word not in keyword, (keyword, word)


CHECK_CASES = [
    ("echo Red fox |lower", "red fox", "lower", True),
    ("echo Red fox |lower", "Red fox", "lower", False),
    ("echo Red fox |upper", "RED FOX", "upper", True),
    ("echo Red fox |upper", "RED FOx", "upper", False),
    ("echo red fox, cat |nocomma", "red fox cat", "nocomma", True),
    ("echo red fox, cat |nocomma", "red fox, cat", "nocomma", False),
    ("echo red fox |quote", ' "red fox" ', "quote", True),
    ("echo red fox |quote", 'red fox"', "quote", False),
    ("echo red fox |quote", '"', "quote", False),
    ("echo red fox |end:ok", "red fox ok", "end", True),
    ("echo red fox |end:ok", '"red fox OK" ', "end", True),
    ("echo red fox |end:ok", "ok red fox", "end", False),
    ("echo red fox |start:ok", "  ok red fox", "start", True),
    ("echo red fox |start:ok", "red fox ok", "start", False),
    ("echo red fox |start:ok", "OK red fox", "start", False),  # case-sensitive, as IFEval's regex
    ("echo red fox |has:ok", "red OK fox", "has", True),
    ("echo red fox |has:ok", "red fox", "has", False),
    ("echo red fox |no:fox", "red foxes", "no", True),  # a whole word only
    ("echo red fox |no:fox", "red Fox", "no", False),
    ("echo red fox big |max:3", "red fox", "max", True),
    ("echo red fox big |max:3", "red fox big", "max", False),
    ("echo red fox |bullets:2", "* red * fox", "bullets", True),
    ("echo red fox |bullets:2", '"- red - fox"', "bullets", True),
    ("echo red fox |bullets:2", "* red fox", "bullets", False),
    ("echo red fox |bullets:2", "**red** * fox", "bullets", False),
    ("echo red fox |json", '"red fox"', "json", True),
    ("echo red fox |json", '```json {"red": "fox"} ```', "json", True),
    ("echo red fox |json", "red fox", "json", False),
    ("echo red fox |ps:ok", "red fox p.s. OK", "ps", True),
    ("echo red fox |ps:ok", "red fox P.S. yes", "ps", False),
    ("echo red fox |ps:ok", "red fox PS ok", "ps", False),
    ("echo red fox |title:ok", "<<OK>> red fox", "title", True),
    ("echo red fox |title:ok", "<ok> red fox", "title", False),
    ("echo red fox |slot", "red fox [x]", "slot", True),
    ("echo red fox |slot", "red fox (x)", "slot", False),
    ("echo red fox |end:ok", "ok", "echo", False),  # degenerate: satisfies end, drops the content
    ("echo Red, fox |end:ok", "RED FOX OK", "echo", True),  # case and commas are not the echo check's business
    ("echo red fox big |no:fox|max:3", "red", "echo", True),  # a prefix of the kept words under max
    ("echo red fox big |no:fox|max:3", "big", "echo", False),
    ("echo red fox |slot|title:ok", "<<ok>> red fox [a b]", "echo", True),
]


@pytest.mark.parametrize(("question", "response", "name", "passed"), CHECK_CASES)
def test_each_checker_accepts_and_rejects(question, response, name, passed):
    assert results(question, response)[name] is passed


def test_every_constraint_has_check_cases():
    assert {name for _, _, name, passed in CHECK_CASES if passed} >= set(CODES) | {"echo"}
    assert {name for _, _, name, passed in CHECK_CASES if not passed} >= set(CODES) | {"echo"}


def test_check_lists_constraints_in_prompt_order_then_echo_and_critique_names_failures():
    checks = TASK.check("echo Red fox, cat |end:ok|nocomma", "red fox, cat")
    assert [r.name for r in checks] == ["end", "nocomma", "echo"]
    assert checks[0].description == "ends with the word 'ok'"
    assert TASK.critique("echo Red fox, cat |end:ok|nocomma", "red fox, cat") == (
        "Fails: ends with the word 'ok'; no commas."
    )
    assert TASK.critique("echo Red fox, cat |end:ok|nocomma", "red fox cat ok") == "Follows every instruction."
    assert TASK.all_passed("echo Red fox, cat |end:ok|nocomma", "red fox cat ok")


def test_the_echo_check_rejects_a_degenerate_answer():
    assert not TASK.all_passed("echo red fox |end:ok", "ok")
    example = Example("echo red fox |end:ok", "ok", "end")
    assert TASK.score(example, "ok") == 0.5
    assert TASK.verify(example).verdict is Verdict.WRONG_ANSWER


@pytest.mark.parametrize(
    ("question", "stray", "repaired"),
    [
        # A keyword the actor appends to every answer, kept beside the postscript that needs it.
        ("echo Cup Star cake |ps:soon", "Cup Star cake soon P.S. soon", "Cup Star cake P.S. soon"),
        ("echo ice cup |start:yay|end:ok", "yay ice cup yay ok", "yay ice cup ok"),
    ],
)
def test_a_stray_copy_of_an_added_word_fails_echo_and_its_repair_removes_it(question, stray, repaired):
    results = {result.name: result.passed for result in TASK.check(question, stray)}
    assert results["echo"] is False and all(passed for name, passed in results.items() if name != "echo")
    assert TASK.repair(question, stray, "echo") == repaired
    assert TASK.all_passed(question, repaired)


def test_canonical_answers_pass_every_check_and_fit_the_student(examples, vocab):
    questions, answers = [], []
    for skill, batch in examples.items():
        assert len(batch) == 1000
        for ex in batch:
            request = parse(ex.question)
            assert request.constraints[0].code == skill == ex.skill
            assert 1 <= len(request.constraints) <= 3 and len(set(request.codes)) == len(request.codes)
            assert canonical_answer(request) == ex.answer
            assert TASK.all_passed(ex.question, ex.answer), (ex, TASK.critique(ex.question, ex.answer))
            assert TASK.score(ex, ex.answer) == 1.0
            assert len(ex.question) <= MAX_QUESTION_CHARS and len(ex.answer) <= MAX_ANSWER_CHARS
            assert set(ex.question) <= vocab and set(ex.answer) <= vocab
            assert 2 <= len(request.content.split()) <= 4
            questions.append(ex.question)
            answers.append(ex.answer)
    assert max(map(len, questions)) <= 60 and max(map(len, answers)) <= 44


def test_every_constraint_bites(examples):
    """Each constraint changes the answer: the canonical answer without it fails it."""
    for batch in examples.values():
        for ex in batch[:200]:
            request = parse(ex.question)
            for code in request.codes:
                assert not CONSTRAINTS[code].check(canonical_answer(request.without(code)), request), (ex, code)


def test_the_skills_combine(examples):
    seen = {tuple(sorted(c.split(":")[0] for c in ex.metadata["constraints"])) for b in examples.values() for ex in b}
    assert {len(combo) for combo in seen} == {1, 2, 3}
    assert ("end", "lower") in seen and ("bullets", "max") in seen
    assert not any({"lower", "upper"} <= set(combo) for combo in seen)


@pytest.mark.parametrize("skill", CODES)
def test_generation_is_seed_deterministic(skill):
    first = TASK.generate(skill, 40, np.random.default_rng(3))
    assert first == TASK.generate(skill, 40, np.random.default_rng(3))
    assert first != TASK.generate(skill, 40, np.random.default_rng(4))
    assert TASK.generate(skill, 0, np.random.default_rng(3)) == []


def test_a_skill_subset_draws_its_extra_constraints_from_itself():
    task = InstructionTask(["lower", "end", "nocomma"], max_constraints=2)
    assert skill_names(task) == ["lower", "end", "nocomma"]
    for ex in task.generate("end", 300, np.random.default_rng(0)):
        codes = parse(ex.question).codes
        assert codes[0] == "end" and len(codes) <= 2 and set(codes) <= {"lower", "end", "nocomma"}
    assert all(
        len(parse(ex.question).codes) == 1
        for ex in InstructionTask(max_constraints=1).generate("json", 50, np.random.default_rng(0))
    )


def breakages(ex):
    """Responses near the canonical answer that break something: each constraint left out, plus edits."""
    request = parse(ex.question)
    answer = ex.answer
    out = [canonical_answer(request.without(code)) for code in request.codes]
    out += [answer.upper(), answer.lower(), answer + ",", answer.strip('"'), f'"{answer}"', answer[1:], answer[:-1]]
    out += [answer + " ok", "ok " + answer, "* " + answer, answer.replace(" ", " * "), "[" + answer + "]"]
    out += ["ok", request.content, json.dumps(request.content), answer.replace("P.S.", "PS")]
    return [r for r in dict.fromkeys(out) if r != answer]


def repaired(ex):
    request = parse(ex.question)
    return [TASK.repair(ex.question, response, name) for response in breakages(ex) for name in [*request.codes, "echo"]]


@pytest.mark.parametrize("code", [*CODES, "echo"])
def test_every_repair_fixes_its_own_check(code, examples):
    fixed = 0
    for batch in examples.values():
        for ex in batch[:60]:
            request = parse(ex.question)
            if code != "echo" and code not in request.codes:
                continue
            for response in breakages(ex):
                if results(ex.question, response)[code]:
                    assert TASK.repair(ex.question, response, code) == response  # already passing: untouched
                    continue
                after = TASK.repair(ex.question, response, code)
                assert results(ex.question, after)[code], (ex.question, response, after)
                fixed += 1
    assert fixed >= 50


def test_repairs_fix_their_check_on_randomly_edited_answers(examples):
    rand = random.Random(0)
    pool = [ex for batch in examples.values() for ex in batch[:100]]
    alphabet = string.ascii_letters + '  ,"*-[]<>.:{}'
    for _ in range(2000):
        ex = rand.choice(pool)
        chars = list(ex.answer)
        for _ in range(rand.randint(1, 4)):
            at = rand.randint(0, len(chars))
            if chars and rand.random() < 0.4:
                del chars[min(at, len(chars) - 1)]
            else:
                chars.insert(at, rand.choice(alphabet))
        response = "".join(chars)
        for name in [*parse(ex.question).codes, "echo"]:
            if name in ("lower", "upper") and not any(c.isalpha() for c in response):
                continue  # no letter to change the case of
            after = TASK.repair(ex.question, response, name)
            assert results(ex.question, after)[name], (ex.question, response, name, after)


def test_repairs_are_minimal_edits():
    q = "echo Red fox, big cat |lower|end:ok|nocomma"
    assert TASK.repair(q, "Red fox, big cat", "lower") == "red fox, big cat"
    assert TASK.repair(q, "red fox, big cat", "end") == "red fox, big cat ok"
    assert TASK.repair(q, '"RED FOX"', "end") == '"RED FOX OK"'
    assert TASK.repair(q, "red fox, big cat", "nocomma") == "red fox big cat"
    assert TASK.repair(q, "ok", "echo") == "red fox big cat ok"
    assert TASK.repair(q, "red dog ok", "echo") == "red fox big cat ok"
    assert TASK.repair("echo Red fox, big |no:fox", "Red fox, big", "no") == "Red big"
    assert TASK.repair("echo red fox big |max:3", "* red * fox * big", "max") == "* red * fox"
    assert TASK.repair("echo red fox big |bullets:3", "red fox big", "bullets") == "* red * fox * big"
    assert TASK.repair("echo red fox big |bullets:1", "* red * fox * big", "bullets") == "* red fox big"
    assert TASK.repair("echo red fox |start:ok", '"red fox"', "start") == 'ok "red fox"'
    assert TASK.repair("echo red fox |title:ok", '"red fox"', "title") == '"<<ok>> red fox"'
    assert TASK.repair("echo red fox |ps:ok|upper", "RED FOX", "ps") == "RED FOX P.S. OK"
    assert TASK.repair("echo red fox |slot|json", '"red fox"', "slot") == '"red fox [x]"'
    assert TASK.repair("echo red fox |quote", "red fox", "quote") == '"red fox"'
    assert TASK.repair("echo red fox |json", "red fox", "json") == '"red fox"'
    with pytest.raises(UnknownName, match="Did you mean 'lower'"):
        TASK.repair(q, "red", "lowr")


def test_verify_judges_from_the_question_text():
    q = "echo Red fox, big cat |lower|end:ok"
    assert TASK.verify(Example(q, "red fox, big cat ok", "end")).verdict is Verdict.CORRECT
    assert verify_example(TASK, Example(q, "red fox, big cat ok", "lower")).ok
    wrong = TASK.verify(Example(q, "Red fox, big cat ok", "lower"))
    assert wrong.verdict is Verdict.WRONG_ANSWER and "all letters lowercase" in wrong.detail
    assert TASK.verify(Example(q, "red fox, big cat ok", "json")).verdict is Verdict.WRONG_SKILL
    garbage = [
        "12+34=", "echo red fox", "echo red fox |lowercase", "echo red fox |end", "echo red fox |max:x",
        "echo r3d fox |lower", "echo red fox |lower|lower", "echo red fox |lower|upper|json|quote",
        "echo red fox\n|lower", "echo red f\u00f6x |lower", "echo |lower", "echo red fox |nocomma:1",
    ]  # fmt: skip
    for question in garbage:
        verdict = TASK.verify(Example(question, "red fox", "lower"))
        assert verdict.verdict is Verdict.MALFORMED and "Expects" in verdict.detail, question
    assert TASK.verify(Example("echo red fox |lower", "red\nfox", "lower")).verdict is Verdict.MALFORMED
    long_question = "echo " + "fox " * 13 + "|lower"  # parses, but longer than the student's 60 characters
    assert TASK.verify(Example(long_question, "fox " * 13, "lower")).verdict is Verdict.MALFORMED
    assert TASK.verify(Example("echo red fox |lower", "red fox" * 7, "lower")).verdict is Verdict.MALFORMED
    with pytest.raises(UnknownName, match="Did you mean 'lower'"):
        TASK.verify(Example(q, "x", "lowr"))


def test_verify_accepts_every_generated_example_and_rejects_its_breakages(examples):
    for batch in examples.values():
        for ex in batch[:100]:
            assert TASK.verify(Example(ex.question, ex.answer, ex.skill)).ok
            request = parse(ex.question)
            for code in request.codes:  # a constraint left out: that constraint fails
                response = canonical_answer(request.without(code))
                assert TASK.verify(Example(ex.question, response, ex.skill)).verdict is Verdict.WRONG_ANSWER


def test_parse_reads_the_text_and_reports_what_it_expects():
    assert parse("  echo Red fox, big  cat | lower |end:ok ") == Request(
        "Red fox, big cat", (Constraint("lower"), Constraint("end", "ok"))
    )
    assert str(parse("echo Red fox, big cat |lower|end:ok")) == "echo Red fox, big cat |lower|end:ok"
    with pytest.raises(InvalidPlan, match=r"Did you mean 'nocomma'.*"):
        parse("echo red fox |nocoma")
    with pytest.raises(InvalidPlan, match=r"Expects the constraint as 'max:<1-99>'"):
        parse("echo red fox |max:0")
    with pytest.raises(InvalidPlan, match="Expects a question like"):
        parse(None)
    with pytest.raises(InvalidPlan, match="at most once"):
        parse("echo red fox |has:ok|has:yes")


def test_heldout_key_merges_reorderings_and_case_and_separates_content():
    key = TASK.heldout_key
    assert (
        key("echo Red fox |lower|nocomma")
        == key("echo red fox, |nocomma|lower")
        == key(" echo RED  fox |nocomma| lower")
    )
    assert key("echo red fox |lower|nocomma") != key("echo red cat |lower|nocomma")
    assert key("echo red fox |lower|nocomma") != key("echo fox red |lower|nocomma")
    assert key("echo red fox |end:ok") != key("echo red fox |end:yes")
    assert key("12 + 34 =") == key("12+34=")  # malformed: the default normalisation


def test_diagnose_names_the_missing_skills():
    q = "echo Red fox, big cat |lower|end:ok|nocomma"
    assert TASK.diagnose(q, "red fox big cat ok", "lower").error == "correct"
    found = TASK.diagnose(q, "Red fox, big cat ok", "end")
    assert found.error == "failed:lower,nocomma" and found.skills == ("lower", "nocomma")
    assert TASK.diagnose(q, "ok", "end").skills == ("end",)  # echo failed: the question's own skill
    assert TASK.diagnose("garbage", "ok", "end").error == "unparseable_question"
    assert InstructionTask(["end"]).diagnose(q, "Red fox, big cat ok", "end").skills == ("end",)


def test_score_is_the_fraction_of_checks_passed():
    ex = Example("echo Red fox, big cat |lower|end:ok", "red fox, big cat ok", "lower")
    assert TASK.score(ex, "red fox, big cat ok") == 1.0
    assert TASK.score(ex, "Red fox, big cat") == pytest.approx(1 / 3)
    assert TASK.score(ex, None) == 0.0
    assert TASK.score(Example("garbage", "x", "lower"), "x") == 0.0


def test_config_errors_say_what_is_expected():
    with pytest.raises(UnknownName, match="Did you mean 'bullets'"):
        InstructionTask(["bulets"])
    with pytest.raises(InvalidConfig, match="at least one"):
        InstructionTask([])
    for bad in (0, 4, True, "2"):
        with pytest.raises(InvalidConfig, match="max_constraints"):
            InstructionTask(max_constraints=bad)
    with pytest.raises(InvalidPlan, match="non-negative"):
        TASK.generate("lower", -1, np.random.default_rng(0))
    with pytest.raises(UnknownName, match="Did you mean 'upper'"):
        TASK.generate("uper", 1, np.random.default_rng(0))
    assert skill_names(InstructionTask("lower, upper")) == ["lower", "upper"]


def test_registered_exported_and_picklable():
    task = make_task("ifeval-like", skills=["lower", "json"])
    assert isinstance(task, InstructionTask) and isinstance(task, Task) and task.name == "ifeval-like"
    assert [s.category for s in TASK.skills] == [CONSTRAINTS[c].category for c in CODES]
    assert len(CODES) >= 14 and set(taxonomy(TASK).successors("case")) == {"lower", "upper"}
    clone = pickle.loads(pickle.dumps(task))
    assert clone.generate("json", 5, np.random.default_rng(1)) == task.generate("json", 5, np.random.default_rng(1))


def test_the_docstring_examples_run():
    import doctest

    import skills.instructions

    outcome = doctest.testmod(skills.instructions)
    assert outcome.attempted > 0 and outcome.failed == 0


# --- the reference: IFEval's own instruction classes --------------------------------------------------------


def _one_line_bullets(response):
    """Our one-line bullets moved onto lines, the layout IFEval's BulletListChecker reads."""
    core = response.strip().strip('"')
    return re.sub(r"(?<=\s)(?=\*[^*]|-)", "\n", core)  # a newline before each marker that follows a space


def _reference(instructions, constraint):
    """IFEval's checker for ``constraint`` as a function of the response."""
    code, arg = constraint.code, constraint.arg
    build = {
        "lower": (instructions.LowercaseLettersEnglishChecker, {}),
        "upper": (instructions.CapitalLettersEnglishChecker, {}),
        "nocomma": (instructions.CommaChecker, {}),
        "quote": (instructions.QuotationChecker, {}),
        "end": (instructions.EndChecker, {"end_phrase": arg}),
        "start": (instructions.ConstrainedStartChecker, {"starter": arg}),
        "has": (instructions.KeywordChecker, {"keywords": [arg]}),
        "no": (instructions.ForbiddenWords, {"forbidden_words": [arg]}),
        "max": (instructions.NumberOfWords, {"num_words": arg, "relation": "less than"}),
        "bullets": (instructions.BulletListChecker, {"num_bullets": arg}),
        "json": (instructions.JsonFormat, {}),
        "ps": (instructions.PostscriptChecker, {"postscript_marker": "P.S."}),
        "title": (instructions.TitleChecker, {}),
        "slot": (instructions.PlaceholderChecker, {"num_placeholders": 1}),
    }
    cls, kwargs = build[code]
    kwargs = {k: int(v) if code in ("max", "bullets") and k.startswith("num") else v for k, v in kwargs.items()}
    checker = cls(CONSTRAINTS[code].ifeval_id)
    checker.build_description(**kwargs)
    if code == "bullets":
        return lambda response: checker.check_following(_one_line_bullets(response))
    return checker.check_following


@pytest.mark.parametrize("code", CODES)
def test_checkers_agree_with_ifeval(code, monkeypatch):
    instructions = pytest.importorskip(
        "if_verifiable.ifeval.instructions", reason="the IFEval reference needs the dev extra (if-verifiable)"
    )
    # IFEval's case checkers also ask langdetect whether the text is English; ours do not (2-4 words are too few to
    # detect a language reliably), so the comparison is of the case test alone.
    monkeypatch.setattr(instructions.langdetect, "detect", lambda text: "en")
    registry = pytest.importorskip("if_verifiable.ifeval.instructions_registry").INSTRUCTION_DICT
    # IFEval's registry comments out its one multi-turn instruction, constrained_start; the class is there.
    assert CONSTRAINTS[code].ifeval_id in registry or code == "start"
    examples = TASK.generate(code, 200, np.random.default_rng(7))
    compared = disagreeing = 0
    for ex in examples:
        request = parse(ex.question)
        constraint = request.constraints[0]
        reference = _reference(instructions, constraint)
        for response in [ex.answer, *breakages(ex), *repaired(ex)]:
            assert "\n" not in response  # so "start" (first line only here, any line in IFEval) reads the same
            ours = CONSTRAINTS[code].check(response, request)
            theirs = bool(reference(response))
            if code == "ps":  # IFEval checks the marker "P.S." alone; ours also wants the postscript's word
                theirs = theirs and re.search(rf"p\.\s?s\.\s*{constraint.arg}\b", response.lower()) is not None
            if code == "title":  # IFEval accepts any <<title>>; ours wants the one asked for
                theirs = theirs and re.search(rf"<<\s*{constraint.arg}\s*>>", response, re.IGNORECASE) is not None
            compared += 1
            disagreeing += ours != theirs
            assert ours == theirs, (ex.question, response, ours, theirs)
    assert compared >= 2000 and disagreeing == 0
