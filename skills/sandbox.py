"""Run untrusted programs: one confined subprocess per program, never ``exec`` in this process.

Every executor in envgym goes through :class:`Sandbox`. A program runs in a fresh ``python -I -S -B`` process
(:mod:`skills.sandbox_child`) in a new session, with a minimal environment (no inherited variables: no secrets),
in a fresh temporary directory that is removed afterwards, under a wall-clock limit (the whole process group is
killed), CPU, memory, file-size and output caps, and without network. :meth:`Sandbox.isolation` says which layers
hold on this machine (kernel namespaces where they are available, else Python audit hooks).

Outcomes: ``pass`` (every test passed), ``fail`` (a test's output differs or it raised), ``timeout``, ``memory``,
``crash`` (the program does not load: a syntax error, a missing function, a forbidden operation at import).

Example:
    >>> from skills.sandbox import Sandbox, CallTest
    >>> result = Sandbox().run("def f(x): return x + 1", [CallTest("f(1)", 2), CallTest("f(5)", 6)])
    >>> result.outcome.value, result.passed, result.total
    ('pass', 2, 2)
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from skills import sandbox_child
from skills.errors import InvalidConfig, config_from_dict

CHILD = Path(sandbox_child.__file__)
ISOLATION_MODES = ("auto", "kernel", "python")
# What the child may inherit: a search path for nothing it may run, and a locale. No HOME of ours, no tokens.
_CHILD_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "PYTHONHASHSEED": "0"}


class Outcome(str, Enum):
    PASS = "pass"
    FAIL = "fail"
    TIMEOUT = "timeout"
    MEMORY = "memory"
    CRASH = "crash"


@dataclass(frozen=True)
class CallTest:
    """Evaluate ``expr`` (e.g. ``"f(3)"``) in the program's namespace; it passes when the value equals ``expected``
    (plain data compared here, in the parent: the program's objects never reach ``==``)."""

    expr: str
    expected: Any


@dataclass(frozen=True)
class StdioTest:
    """Run the program as ``__main__`` with ``stdin``; it passes when its printed text equals ``expected``, line
    by line with trailing whitespace ignored (LiveCodeBench's comparison)."""

    stdin: str
    expected: str


@dataclass(frozen=True)
class AssertTest:
    """Run test code (an ``assert``) in the program's namespace; it passes when nothing is raised. The verdict is
    reached inside the sandbox, so a program could defeat it (an object whose ``__eq__`` is always true): prefer
    :class:`CallTest`, which the MBPP loader uses for every ``assert call == literal``."""

    code: str


Test = CallTest | StdioTest | AssertTest
_KINDS = {CallTest: "call", StdioTest: "stdin", AssertTest: "assert"}


@dataclass(frozen=True)
class Execution:
    """One program's run: the outcome, tests passed of total, the first error, what it printed, and the time."""

    outcome: Outcome
    passed: int
    total: int
    error: str = ""
    stdout: str = ""
    stderr: str = ""
    seconds: float = 0.0
    isolation: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def pass_rate(self) -> float:
        return self.passed / self.total if self.total else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome.value,
            "passed": self.passed,
            "total": self.total,
            "error": self.error,
            "seconds": round(self.seconds, 4),
        }


@dataclass(frozen=True)
class SandboxConfig:
    """Limits of one sandboxed execution, and how many run at once."""

    timeout_s: float = field(
        default=5.0, metadata={"help": "Wall-clock limit per program (all its tests); its process group is killed."}
    )
    cpu_s: int = field(default=5, metadata={"help": "CPU-seconds limit per process (RLIMIT_CPU)."})
    memory_mb: int = field(default=512, metadata={"help": "Address-space limit per process (RLIMIT_AS), MiB."})
    output_bytes: int = field(
        default=65_536, metadata={"help": "Most bytes kept of a program's stdout, stderr and printed text each."}
    )
    file_bytes: int = field(
        default=1 << 20, metadata={"help": "Largest file a program may write in its directory (RLIMIT_FSIZE)."}
    )
    max_processes: int = field(
        default=64, metadata={"help": "RLIMIT_NPROC of the unprivileged uid programs run as (root parents only)."}
    )
    parallel: int = field(
        default=0, metadata={"help": "Programs run at once by run_many; 0: one per CPU core of this machine."}
    )
    isolation: str = field(
        default="auto",
        metadata={
            "help": "'auto': kernel namespaces where available, else Python audit hooks alone; 'kernel': refuse to "
            "run without namespaces; 'python': audit hooks only (for machines that forbid namespaces)."
        },
    )
    recursion_limit: int = field(default=1000, metadata={"help": "sys.setrecursionlimit inside the sandbox."})
    python_guard: bool = field(
        default=True,
        metadata={
            "help": "Install the Python audit hook (no processes, sockets, ctypes, writes outside the job "
            "directory). Turn it off only to test the kernel layers alone."
        },
    )

    def __post_init__(self) -> None:
        for name in ("cpu_s", "memory_mb", "output_bytes", "file_bytes", "max_processes", "recursion_limit"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidConfig(f"Expects SandboxConfig.{name} as an integer >= 1; actual {value!r}.")
        if isinstance(self.parallel, bool) or not isinstance(self.parallel, int) or self.parallel < 0:
            raise InvalidConfig(f"Expects SandboxConfig.parallel >= 0 (0: one per core); actual {self.parallel!r}.")
        if isinstance(self.timeout_s, bool) or not isinstance(self.timeout_s, (int, float)) or not self.timeout_s > 0:
            raise InvalidConfig(f"Expects SandboxConfig.timeout_s > 0 seconds; actual {self.timeout_s!r}.")
        if not isinstance(self.python_guard, bool):
            raise InvalidConfig(f"Expects SandboxConfig.python_guard as a bool; actual {self.python_guard!r}.")
        if self.isolation not in ISOLATION_MODES:
            raise InvalidConfig(f"Expects SandboxConfig.isolation in {ISOLATION_MODES}; actual {self.isolation!r}.")
        if self.isolation == "python" and not self.python_guard:
            raise InvalidConfig(
                "Expects python_guard=True with isolation='python': nothing else would keep programs off the "
                "network and the file system. Use isolation='kernel' to test the kernel layers alone."
            )

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SandboxConfig:
        return config_from_dict(cls, values, "SandboxConfig field")

    @property
    def workers(self) -> int:
        return self.parallel or os.cpu_count() or 1


def _same_stdout(printed: str, expected: str) -> bool:
    lines = [line.rstrip() for line in printed.strip().splitlines()]
    return lines == [line.rstrip() for line in expected.strip().splitlines()]


@functools.cache
def _hidden_and_kept() -> tuple[list[str], list[str]]:
    """What the child hides (this process's home) and mounts back inside it (the Python installation), resolved
    once per process rather than per program."""
    home = os.path.expanduser("~")
    prefixes = {sys.base_prefix, sys.prefix, sys.exec_prefix, sys.base_exec_prefix}
    prefixes.add(os.path.dirname(os.path.realpath(sys.executable)))
    return ([home] if home not in ("/", "") else []), sorted(os.path.realpath(path) for path in prefixes)


def _exits_within(process: subprocess.Popen, seconds: float) -> bool:
    """Whether ``process`` exits within ``seconds``, woken the moment it does: ``Popen.wait(timeout)`` polls with
    growing sleeps, which added ~15 ms to a 20 ms program. A pidfd (Linux 5.3+) is waited on with ``select``;
    elsewhere a blocking wait in a helper thread with a join timeout does the same."""
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is not None:
        try:
            descriptor = pidfd_open(process.pid)
        except OSError:  # the process is already gone, or pidfds are not allowed here
            descriptor = None
        if descriptor is not None:
            try:
                ready, _, _ = select.select([descriptor], [], [], seconds)
            finally:
                os.close(descriptor)
            return bool(ready)
    waiter = threading.Thread(target=process.wait, daemon=True)
    waiter.start()
    waiter.join(seconds)
    return not waiter.is_alive()


def _read_capped(path: Path, limit: int) -> str:
    try:
        with open(path, "rb") as handle:
            return handle.read(limit).decode("utf-8", errors="replace")
    except OSError:
        return ""


class Sandbox:
    """Runs programs confined; thread-safe, so :meth:`run_many` runs up to ``config.workers`` at once."""

    def __init__(self, config: SandboxConfig | dict[str, Any] | None = None) -> None:
        if isinstance(config, dict):
            config = SandboxConfig.from_dict(config)
        self.config = config or SandboxConfig()
        self._isolation: dict[str, str] | None = None
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        # An environment holding a code task is deep-copied (snapshots) and pickled (Ray): the lock is not.
        return {"config": self.config, "_isolation": self._isolation}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _job(self, source: str, tests: Sequence[Test]) -> dict[str, Any]:
        kinds = {_KINDS.get(type(test)) for test in tests}
        if None in kinds or len(kinds) > 1:
            raise InvalidConfig(
                "Expects the tests of one program to be all CallTest, all StdioTest or all AssertTest; actual "
                f"{sorted({type(test).__name__ for test in tests})}."
            )
        kind = kinds.pop() if kinds else "call"
        payload = [getattr(test, {"call": "expr", "stdin": "stdin", "assert": "code"}[kind]) for test in tests]
        hide, keep = _hidden_and_kept()
        return {
            "source": source,
            "kind": kind,
            "tests": payload,
            "memory_bytes": self.config.memory_mb << 20,
            "cpu_seconds": self.config.cpu_s,
            "file_bytes": self.config.file_bytes,
            "output_chars": self.config.output_bytes,
            "max_processes": self.config.max_processes,
            "recursion_limit": self.config.recursion_limit,
            "isolation": self.config.isolation,
            "python_guard": self.config.python_guard,
            "hide": hide,
            "keep": keep,
        }

    def run(self, source: str, tests: Sequence[Test]) -> Execution:
        """Run ``source`` against ``tests`` in a fresh confined process; never raises for what the program does."""
        if not isinstance(source, str):
            raise InvalidConfig(f"Expects a program as a string; actual {type(source).__name__}.")
        job = self._job(source, tests)
        start = time.perf_counter()
        job_dir = tempfile.mkdtemp(prefix="envgym-sandbox-")
        try:
            return self._run_in(Path(job_dir), job, tests, start)
        finally:
            shutil.rmtree(job_dir, ignore_errors=True)

    def _run_in(self, job_dir: Path, job: dict[str, Any], tests: Sequence[Test], start: float) -> Execution:
        (job_dir / sandbox_child.JOB_FILE).write_text(json.dumps(job), encoding="utf-8")
        limit = self.config.output_bytes
        with (
            open(job_dir / sandbox_child.STDOUT_FILE, "wb") as out,
            open(job_dir / sandbox_child.STDERR_FILE, "wb") as err,
        ):
            process = subprocess.Popen(
                [sys.executable, "-I", "-S", "-B", str(CHILD), str(job_dir)],
                cwd=job_dir,
                env={**_CHILD_ENV, "HOME": str(job_dir), "TMPDIR": str(job_dir)},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
                close_fds=True,
            )
            try:
                timed_out = not _exits_within(process, self.config.timeout_s)
            finally:
                # The whole session: whatever the program started dies with it (it may not start any).
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        seconds = time.perf_counter() - start
        stdout = _read_capped(job_dir / sandbox_child.STDOUT_FILE, limit)
        stderr = _read_capped(job_dir / sandbox_child.STDERR_FILE, limit)
        total = len(tests)

        def done(outcome: Outcome, passed: int = 0, error: str = "", isolation: dict | None = None) -> Execution:
            return Execution(outcome, passed, total, error[:2000], stdout, stderr, seconds, isolation or {})

        if timed_out:
            return done(Outcome.TIMEOUT, error=f"wall-clock limit of {self.config.timeout_s} s")
        code = process.returncode
        # SIGXCPU at the CPU limit, or SIGKILL a second later for a program that caught it.
        if code == -signal.SIGXCPU or (code == -signal.SIGKILL and seconds >= self.config.cpu_s):
            return done(Outcome.TIMEOUT, error=f"CPU limit of {self.config.cpu_s} s")
        try:
            result = json.loads(_read_capped(job_dir / sandbox_child.RESULT_FILE, self.config.file_bytes))
            status, outcomes = str(result["status"]), list(result["outcomes"])
            isolation = {str(k): str(v) for k, v in dict(result.get("isolation") or {}).items()}
            error = str(result.get("error") or "")
        except (ValueError, KeyError, TypeError, AttributeError):
            if "MemoryError" in stderr or code == -signal.SIGKILL:
                return done(Outcome.MEMORY, error=stderr.strip().splitlines()[-1] if stderr.strip() else "killed")
            tail = stderr.strip().splitlines()[-1] if stderr.strip() else f"exit code {code}, no result"
            return done(Outcome.CRASH, error=tail)
        if status == "memory":
            return done(Outcome.MEMORY, error=error or "MemoryError", isolation=isolation)
        if status != "ran":
            return done(Outcome.CRASH, error=error, isolation=isolation)
        passed, first_error = self._compare(tests, outcomes)
        outcome = Outcome.PASS if passed == total else Outcome.FAIL
        return done(outcome, passed, first_error, isolation)

    @staticmethod
    def _compare(tests: Sequence[Test], outcomes: list[Any]) -> tuple[int, str]:
        passed, first_error = 0, ""
        for index, test in enumerate(tests):
            got = outcomes[index] if index < len(outcomes) else {"error": "no result"}
            error = str(got.get("error", "")) if isinstance(got, dict) else "unreadable result"
            ok = False
            if not error and isinstance(got, dict):
                try:
                    if isinstance(test, CallTest):
                        value = sandbox_child.decode(got.get("output"))
                        ok = bool(value == test.expected)
                        error = "" if ok else f"{test.expr} returned {value!r}, expected {test.expected!r}"
                    elif isinstance(test, StdioTest):
                        printed = str(got.get("output", ""))
                        ok = _same_stdout(printed, test.expected)
                        error = "" if ok else f"printed {printed[:200]!r}, expected {test.expected[:200]!r}"
                    else:
                        ok = True
                except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as problem:
                    error = f"unreadable output ({problem})"
            passed += ok
            if not ok and not first_error:
                first_error = error or "failed"
        return passed, first_error

    def run_many(self, jobs: Sequence[tuple[str, Sequence[Test]]]) -> list[Execution]:
        """Each ``(source, tests)`` in its own process, ``config.workers`` at a time, results in order."""
        if len(jobs) <= 1 or self.config.workers == 1:
            return [self.run(source, tests) for source, tests in jobs]
        with ThreadPoolExecutor(max_workers=self.config.workers) as pool:
            return list(pool.map(lambda job: self.run(*job), jobs))

    def isolation(self) -> dict[str, str]:
        """Which layers hold on this machine (the child's own report of a trivial run; measured once)."""
        with self._lock:
            if self._isolation is None:
                execution = self.run("def f():\n    return 1\n", [CallTest("f()", 1)])
                if execution.outcome is not Outcome.PASS:
                    raise InvalidConfig(
                        f"Expects the sandbox to run a trivial program; it gave {execution.outcome.value}: "
                        f"{execution.error or execution.stderr[-500:]}. With SandboxConfig.isolation='kernel' this "
                        "machine may not allow namespaces: use 'auto'."
                    )
                self._isolation = execution.isolation
            return dict(self._isolation)
