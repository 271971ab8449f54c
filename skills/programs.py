"""What code tasks share: pulling a program out of a reply, and judging programs against tests in the sandbox.

:class:`ProgramJudge` is the one door from a code task to :class:`skills.sandbox.Sandbox`. It adds what makes
judging thousands of answers per evaluation affordable without trusting any of them:

* a reply that is not a Python program defining the entry function fails without starting a process (parsing is
  not running: ``ast.parse`` only);
* a program whose syntax tree is the task's own reference solution's passes without starting a process (the same
  tree is the same program);
* results are cached by (program, tests), so an answer judged once is not run again;
* the rest run in parallel, one sandboxed process each.
"""

from __future__ import annotations

import ast
import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from skills.sandbox import Execution, Outcome, Sandbox, SandboxConfig, Test
from skills.task import Example, Verdict, Verification

MAX_PROGRAM_CHARS = 20_000  # a longer reply is refused before it is parsed
_FENCE = re.compile(r"```(?:python|py|Python)?[ \t]*\n(.*?)```", re.DOTALL)


def extract_program(reply: str) -> str:
    """The program in a model's reply: the first fenced code block (```python ... ```) if there is one, else the
    reply itself."""
    match = _FENCE.search(reply)
    return match.group(1) if match else reply


def parse_program(program: str) -> ast.Module | None:
    """The program's syntax tree, or None when it is not Python (or is longer than :data:`MAX_PROGRAM_CHARS`)."""
    if len(program) > MAX_PROGRAM_CHARS:
        return None
    try:
        return ast.parse(program)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def syntax_tree(program: str) -> str | None:
    """The program's syntax tree as text (positions left out), or None when it is not Python."""
    tree = parse_program(program)
    return None if tree is None else ast.dump(tree)


def defines(tree: ast.Module, name: str) -> bool:
    """Whether the program defines a function or class ``name`` at its top level."""
    return any(
        isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name
        for node in tree.body
    )


@dataclass(frozen=True)
class ProgramCase:
    """One program to judge: its text, its tests, and optionally the reference solution's syntax tree (a program
    with that very tree passes without running) and the function it must define (else it fails unrun)."""

    program: str
    tests: Sequence[Test]
    reference_tree: str | None = None
    entry: str | None = None


class ProgramJudge:
    """Judges programs against tests in a :class:`Sandbox`, with the shortcuts above; thread-safe.

    ``runs`` counts the programs that went to the sandbox, ``shortcuts`` those judged without parsing further
    (not a program, no entry point, the reference itself); cache hits count as neither."""

    def __init__(
        self, sandbox: Sandbox | SandboxConfig | dict[str, Any] | None = None, cache_size: int = 50_000
    ) -> None:
        self.sandbox = sandbox if isinstance(sandbox, Sandbox) else Sandbox(sandbox)
        self.cache_size = cache_size
        self._cache: OrderedDict[str, Execution] = OrderedDict()
        self._lock = threading.Lock()
        self.runs = 0
        self.shortcuts = 0

    def __getstate__(self) -> dict[str, Any]:
        # Copied with an environment (snapshots, Ray): the lock is not picklable and the cache is only a cache.
        return {"sandbox": self.sandbox, "cache_size": self.cache_size, "runs": self.runs, "shortcuts": self.shortcuts}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._cache = OrderedDict()
        self._lock = threading.Lock()

    def judge_some(self, cases: Sequence[ProgramCase | None]) -> list[Execution | None]:
        """:meth:`judge` for the cases that are there; None where a case is None (a question with no program to
        judge: not a question of the task)."""
        judged = iter(self.judge([case for case in cases if case is not None]))
        return [None if case is None else next(judged) for case in cases]

    def judge(self, cases: Sequence[ProgramCase]) -> list[Execution]:
        """One :class:`Execution` per case, in order; the ones that need a process run in parallel."""
        results: list[Execution | None] = [self._without_running(case) for case in cases]
        pending: dict[str, list[int]] = {}
        with self._lock:
            self.shortcuts += sum(result is not None for result in results)
            for index, case in enumerate(cases):
                if results[index] is None:
                    key = _cache_key(case)
                    if key in self._cache:
                        self._cache.move_to_end(key)
                        results[index] = self._cache[key]
                    else:
                        pending.setdefault(key, []).append(index)
        keys = list(pending)
        executions = self.sandbox.run_many([(cases[pending[k][0]].program, cases[pending[k][0]].tests) for k in keys])
        with self._lock:
            self.runs += len(keys)
            for key, execution in zip(keys, executions, strict=True):
                if execution.outcome is not Outcome.TIMEOUT:  # a timeout may be the machine's load, not the program
                    self._cache[key] = execution
                    if len(self._cache) > self.cache_size:
                        self._cache.popitem(last=False)
        for key, execution in zip(keys, executions, strict=True):
            for index in pending[key]:
                results[index] = execution
        return [result for result in results if result is not None]

    @staticmethod
    def _without_running(case: ProgramCase) -> Execution | None:
        """The verdict on a case that needs no process: not Python, no entry point, or the reference's own tree."""
        total = len(case.tests)
        tree = parse_program(case.program)
        if tree is None:
            return Execution(Outcome.CRASH, 0, total, "not a Python program (it does not parse)")
        if case.entry is not None and not defines(tree, case.entry):
            return Execution(Outcome.CRASH, 0, total, f"defines no function {case.entry}()")
        if case.reference_tree is not None and ast.dump(tree) == case.reference_tree:
            return Execution(Outcome.PASS, total, total, "")
        return None


def _cache_key(case: ProgramCase) -> str:
    digest = hashlib.sha256(case.program.encode("utf-8", errors="surrogatepass"))
    digest.update(repr(list(case.tests)).encode("utf-8", errors="surrogatepass"))
    return digest.hexdigest()


class ProgramTask:
    """What the program tasks (:class:`skills.code.CodeTask`, :class:`skills.code_files.CodeFileTask`) share:
    an answer's score is the share of its tests it passes, from one :meth:`run_answers` batch (judged in
    parallel); a subclass says how a question becomes a :class:`ProgramCase` and how examples are verified."""

    def run_answers(
        self, questions: Sequence[str], answers: Sequence[Any], *, visible: bool = False
    ) -> list[Execution | None]:
        """Each answer run against its question's tests (``visible``: the tests shown in the question), or None
        for a question that is not this task's."""
        raise NotImplementedError

    def verify_many(self, examples: Sequence[Example]) -> list[Verification]:
        raise NotImplementedError

    def score(self, example: Example, answer: str) -> float:
        return self.score_many([example], [answer])[0]

    def score_many(self, examples: Sequence[Example], answers: Sequence[str]) -> list[float]:
        """The share of its question's tests each answer passes (0.0 for a question that is not this task's), the
        sandboxed runs in parallel."""
        return _pass_rates(self.run_answers([ex.question for ex in examples], answers))

    def score_visible_many(self, examples: Sequence[Example], answers: Sequence[str]) -> list[float]:
        """The share of the tests shown in its question each answer passes: what LbT's code setting scores exam
        students on (the other tests stay for evaluation)."""
        return _pass_rates(self.run_answers([ex.question for ex in examples], answers, visible=True))

    def verify(self, example: Example) -> Verification:
        return self.verify_many([example])[0]


def run_verdict(run: Execution, tests: str) -> Verification:
    """CORRECT for a run that passed all its ``tests`` (e.g. "hidden tests"), else WRONG_ANSWER naming the
    outcome, the count passed and the first error."""
    if run.outcome is Outcome.PASS:
        return Verification(Verdict.CORRECT, f"passes all {run.total} {tests}")
    return Verification(Verdict.WRONG_ANSWER, f"{run.outcome.value}: {run.passed}/{run.total} {tests}; {run.error}")


def _pass_rates(runs: Sequence[Execution | None]) -> list[float]:
    return [0.0 if run is None else run.pass_rate for run in runs]
