import numpy as np
import pytest

from skills import ArithmeticTask, Example, Verdict, make_task, skill_names, taxonomy, verify_example
from skills.arithmetic import solve
from skills.errors import Unverifiable

TASK = ArithmeticTask()


@pytest.mark.parametrize("skill", skill_names(TASK))
def test_generator_is_seed_deterministic(skill):
    first = TASK.generate(skill, 50, np.random.default_rng(3))
    again = TASK.generate(skill, 50, np.random.default_rng(3))
    other = TASK.generate(skill, 50, np.random.default_rng(4))
    assert first == again
    assert first != other


@pytest.mark.parametrize("skill", skill_names(TASK))
def test_gold_answers_verify_and_wrong_ones_are_rejected(skill):
    for ex in TASK.generate(skill, 200, np.random.default_rng(0)):
        assert verify_example(TASK, ex).ok
        assert TASK.score(ex, " " + ex.answer + " ") == 1.0
        wrong = "<" if ex.answer != "<" else ">"
        if ex.answer.lstrip("-").isdigit():
            wrong = str(int(ex.answer) + 1)
        assert TASK.score(ex, wrong) == 0.0
        # A teacher's wrong gold answer fails the verifier: truth comes from the question.
        assert verify_example(TASK, Example(ex.question, wrong, skill)).verdict is Verdict.WRONG_ANSWER


def test_skill_definitions_hold():
    """Every one of the eight skills, against its description, with this test's own column arithmetic."""
    rng = np.random.default_rng(1)

    def carries(*terms):
        return any(sum((t // 10**i) % 10 for t in terms) >= 10 for i in range(4))

    def borrows(a, b):
        return any((a // 10**i) % 10 < (b // 10**i) % 10 for i in range(4))

    def three_digit(*terms):
        return all(100 <= t <= 999 for t in terms)

    def operands(ex, op):
        return tuple(map(int, ex.question[:-1].split(op)))

    rules = {
        "add_no_carry": ("+", lambda a, b: three_digit(a, b) and not carries(a, b)),
        "add_carry": ("+", lambda a, b: 10 <= a <= 99 and 10 <= b <= 99 and carries(a, b)),
        "add_3d_carry": ("+", lambda a, b: three_digit(a, b) and carries(a, b)),
        "sum3": ("+", lambda a, b, c: 10 <= a <= 99 and 1 <= b <= 9 and 1 <= c <= 9),
        "sub_no_borrow": ("-", lambda a, b: three_digit(a, b) and a >= b and not borrows(a, b)),
        "sub_borrow": ("-", lambda a, b: three_digit(a, b) and a > b and borrows(a, b)),
        "compare": ("?", three_digit),
        "mul_1d": ("*", lambda a, b: three_digit(a) and 2 <= b <= 9),
    }
    answers = {
        "+": lambda *t: str(sum(t)),
        "-": lambda a, b: str(a - b),
        "*": lambda a, b: str(a * b),
        "?": lambda a, b: "<" if a < b else ">" if a > b else "=",
    }
    assert sorted(rules) == sorted(s.name for s in TASK.skills)
    for skill, (op, holds) in rules.items():
        examples = TASK.generate(skill, 300, rng)
        assert len({ex.question for ex in examples}) > 100, skill  # a varied generator, not a constant
        for ex in examples:
            terms = operands(ex, op)
            assert ex.skill == skill and holds(*terms), (skill, ex.question)
            assert ex.answer == answers[op](*terms), (skill, ex.question, ex.answer)


def test_solver_matches_python():
    assert solve("47+38=") == "85"
    assert solve("12+3+4=") == "19"
    assert solve("90-37=") == "53"
    assert solve("123*7=") == "861"
    assert [solve("5?7="), solve("7?5="), solve("7?7=")] == ["<", ">", "="]
    with pytest.raises(Unverifiable, match="Expects ASCII digits"):
        solve("what is 2+2")
    with pytest.raises(Unverifiable, match="Expects an arithmetic question"):
        solve("47+38")
    assert TASK.score(Example("what is 2+2", "4", "add_carry"), "4") == 0.0


def test_heldout_key_identifies_commuted_questions():
    assert TASK.heldout_key("38+47=") == TASK.heldout_key("47+38=")
    assert TASK.heldout_key("3+12+4=") == TASK.heldout_key("12+4+3=")
    assert TASK.heldout_key("9*123=") == TASK.heldout_key("123*9=")
    assert TASK.heldout_key("47-38=") != TASK.heldout_key("38-47=")
    assert TASK.heldout_key("5?7=") != TASK.heldout_key("7?5=")


def test_taxonomy_is_a_tree_root_category_skill_with_prerequisite_edges():
    graph = taxonomy(TASK)
    tree = graph.edge_subgraph([e for e in graph.edges if graph.edges[e]["relation"] == "contains"])
    assert graph.nodes["arithmetic"]["kind"] == "root"
    leaves = [n for n, d in tree.out_degree() if d == 0]
    assert sorted(leaves) == sorted(skill_names(TASK))
    assert all(tree.in_degree(n) == 1 for n in tree if n != "arithmetic")
    prerequisites = [e for e in graph.edges if graph.edges[e]["relation"] == "prerequisite"]
    assert ("add_carry", "add_3d_carry") in prerequisites and ("sub_no_borrow", "sub_borrow") in prerequisites
    # Only edges among the chosen skills, and a cycle is refused.
    assert ArithmeticTask(["add_carry", "sum3"]).prerequisites == [("add_carry", "sum3")]


def test_prerequisite_cycles_and_unknown_skills_are_refused():
    from skills.errors import InvalidConfig
    from skills.task import prerequisite_edges

    class Cyclic(ArithmeticTask):
        prerequisites = (("add_carry", "sum3"), ("sum3", "add_carry"))

    with pytest.raises(InvalidConfig, match="no cycle"):
        prerequisite_edges(Cyclic())

    class Unknown(ArithmeticTask):
        prerequisites = (("add_carry", "sum_3"),)

    with pytest.raises(InvalidConfig, match="Did you mean 'sum3'"):
        prerequisite_edges(Unknown())


def test_at_least_eight_skills_and_unknown_names_suggest():
    assert len(skill_names(TASK)) >= 8
    with pytest.raises(ValueError, match="Did you mean 'sub_borrow'"):
        TASK.generate("sub_borow", 1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="Did you mean 'arithmetic'"):
        make_task("arithmetc")
