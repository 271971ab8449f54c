"""The sandbox: programs that try to do harm are contained, classified, and leave the parent unharmed.

Every attack runs twice: with everything this machine offers (``auto``: kernel namespaces and limits where
available, plus the Python audit hook), and with the Python layer alone (``python``), which is what holds on a
machine without namespaces. The kernel layers are also tested alone, where they are available.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from skills.errors import InvalidConfig
from skills.sandbox import AssertTest, CallTest, Outcome, Sandbox, SandboxConfig, StdioTest

MODES = ["auto", "python"]
OK = [CallTest("f()", 1)]


def sandbox(mode: str, **limits) -> Sandbox:
    return Sandbox(SandboxConfig(isolation=mode, **limits))


def kernel_sandbox(**limits) -> Sandbox:
    """The kernel layers alone (no audit hook); skipped where this machine does not allow namespaces."""
    box = Sandbox(SandboxConfig(isolation="kernel", python_guard=False, **limits))
    try:
        box.isolation()
    except InvalidConfig as error:
        pytest.skip(f"no kernel isolation on this machine: {error}")
    return box


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def parent_still_works() -> None:
    """The parent can still start processes and write files after the attack."""
    result = subprocess.run([sys.executable, "-c", "print(6 * 7)"], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "42"


@pytest.fixture
def listener():
    """A real TCP server on 127.0.0.1 that records whether anyone connected."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.5)
    yield server
    server.close()


def nobody_connected(server: socket.socket) -> bool:
    try:
        connection, _ = server.accept()
    except TimeoutError:
        return True
    connection.close()
    return False


# -- what works ----------------------------------------------------------------------------------------------------
def test_a_correct_program_passes_and_a_wrong_one_fails_with_the_difference():
    box = Sandbox()
    right = box.run("def f(x):\n    return x * 2\n", [CallTest("f(2)", 4), CallTest("f(-3)", -6)])
    wrong = box.run("def f(x):\n    return x + 2\n", [CallTest("f(2)", 4), CallTest("f(-3)", -6)])
    assert (right.outcome, right.passed, right.total) == (Outcome.PASS, 2, 2)
    assert (wrong.outcome, wrong.passed, wrong.pass_rate) == (Outcome.FAIL, 1, 0.5)
    assert wrong.error == "f(-3) returned -1, expected -6"


def test_outputs_are_compared_as_plain_data_so_types_matter_as_in_python():
    box = Sandbox()
    program = "def f(k):\n    return {'t': (1, 2), 's': {3}, 'l': [1.5], 'b': b'x', 'n': None, 'big': 2**70}[k]\n"
    tests = [CallTest(f"f({k!r})", v) for k, v in (("t", (1, 2)), ("s", {3}), ("l", [1.5]), ("b", b"x"))]
    tests += [CallTest("f('n')", None), CallTest("f('big')", 2**70)]
    assert box.run(program, tests).outcome is Outcome.PASS
    assert box.run("def f():\n    return [1, 2]\n", [CallTest("f()", (1, 2))]).outcome is Outcome.FAIL


def test_stdin_programs_and_assert_tests():
    box = Sandbox()
    program = "a, b = map(int, input().split())\nprint(a + b)\n"
    tests = [StdioTest("1 2\n", "3\n"), StdioTest("5 5\n", "10")]
    assert box.run(program, tests).outcome is Outcome.PASS
    assert box.run(program, [StdioTest("1 2\n", "4\n")]).outcome is Outcome.FAIL
    asserts = [AssertTest("assert f(2) == 3"), AssertTest("assert f(0) == 1")]
    assert box.run("def f(x):\n    return x + 1\n", asserts).outcome is Outcome.PASS
    assert box.run("def f(x):\n    return x\n", asserts).passed == 0


def test_programs_that_do_not_load_crash_with_the_error():
    box = Sandbox()
    syntax = box.run("def f(:\n", OK)
    missing = box.run("def g():\n    return 1\n", OK)
    assert syntax.outcome is Outcome.CRASH and "SyntaxError" in syntax.error
    assert missing.outcome is Outcome.FAIL and "NameError" in missing.error


def test_many_programs_run_in_parallel_and_come_back_in_order():
    box = Sandbox(SandboxConfig(parallel=2))
    jobs = [(f"def f():\n    return {i}\n", [CallTest("f()", i if i % 3 else -1)]) for i in range(12)]
    results = box.run_many(jobs)
    assert [r.outcome is Outcome.PASS for r in results] == [bool(i % 3) for i in range(12)]


# -- what must fail to do harm ------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_an_infinite_loop_times_out_and_its_processes_are_gone(mode):
    box = sandbox(mode, timeout_s=1.0)
    start = time.perf_counter()
    program = "import os\nos.write(1, str(os.getpid()).encode())\ndef f():\n    while True:\n        pass\n"
    result = box.run(program, OK)
    assert result.outcome is Outcome.TIMEOUT
    assert time.perf_counter() - start < 10
    assert result.stdout.isdigit() and not alive(int(result.stdout))
    parent_still_works()


@pytest.mark.parametrize("mode", MODES)
def test_the_cpu_limit_stops_a_busy_program_even_within_the_wall_clock(mode):
    result = sandbox(mode, timeout_s=30.0, cpu_s=1).run("def f():\n    while True:\n        pass\n", OK)
    assert result.outcome is Outcome.TIMEOUT and "CPU" in result.error


@pytest.mark.parametrize("mode", MODES)
def test_a_fork_bomb_is_contained(mode):
    program = "import os\ndef f():\n    while True:\n        os.fork()\n"
    result = sandbox(mode, timeout_s=5.0).run(program, OK)
    assert result.outcome in (Outcome.FAIL, Outcome.CRASH)
    assert "fork" in result.error
    parent_still_works()


@pytest.mark.parametrize("mode", MODES)
def test_allocating_far_more_than_allowed_is_a_memory_outcome(mode):
    result = sandbox(mode, memory_mb=256).run("def f():\n    return len(bytearray(8 * 1024**3))\n", OK)
    assert result.outcome is Outcome.MEMORY
    assert Sandbox().run("def f():\n    return len(bytearray(10**6)) // 10**6\n", OK).outcome is Outcome.PASS


@pytest.mark.parametrize("mode", MODES)
def test_writing_or_deleting_outside_the_job_directory_changes_nothing(mode, tmp_path):
    victim = tmp_path / "keep.txt"
    victim.write_text("precious")
    box = sandbox(mode)
    for program in (
        f"def f():\n    open({str(tmp_path / 'new.txt')!r}, 'w').write('x')\n    return 1\n",
        f"import os\ndef f():\n    os.remove({str(victim)!r})\n    return 1\n",
        f"import shutil\ndef f():\n    shutil.rmtree({str(tmp_path)!r})\n    return 1\n",
        f"def f():\n    open({str(victim)!r}, 'a').write('tampered')\n    return 1\n",
        "def f():\n    open('/tmp/envgym-sandbox-escape.txt', 'w').write('x')\n    return 1\n",
    ):
        result = box.run(program, OK)
        assert result.outcome is Outcome.FAIL and "PermissionError" in result.error, program
    assert victim.read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]
    assert not Path("/tmp/envgym-sandbox-escape.txt").exists()


@pytest.mark.parametrize("mode", MODES)
def test_the_job_directory_is_writable_then_removed(mode):
    program = "import os\ndef f():\n    open('scratch.txt', 'w').write('x' * 10)\n    return os.getcwd()\n"
    result = sandbox(mode).run(program, [CallTest("f()", "unknowable")])
    job_dir = result.error.split(" returned ")[1].split(", expected")[0].strip("'")
    assert job_dir.startswith(("/tmp", os.path.realpath("/tmp"))) and "envgym-sandbox-" in job_dir
    assert not os.path.exists(job_dir)


@pytest.mark.parametrize("mode", MODES)
def test_the_parents_environment_variables_never_reach_the_program(mode, monkeypatch):
    monkeypatch.setenv("ENVGYM_TEST_SECRET", "hunter2")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    program = "import os\ndef f():\n    return sorted(k for k in os.environ if 'SECRET' in k or 'KEY' in k)\n"
    assert sandbox(mode).run(program, [CallTest("f()", [])]).outcome is Outcome.PASS


@pytest.mark.parametrize("mode", MODES)
def test_a_socket_to_localhost_never_connects(mode, listener):
    port = listener.getsockname()[1]
    program = f"import socket\ndef f():\n    socket.create_connection(('127.0.0.1', {port}), timeout=2)\n    return 1\n"
    result = sandbox(mode).run(program, OK)
    assert result.outcome is Outcome.FAIL
    assert nobody_connected(listener)


@pytest.mark.parametrize("mode", MODES)
def test_signals_to_the_parent_are_refused(mode):
    program = f"import os, signal\ndef f():\n    os.kill({os.getpid()}, signal.SIGTERM)\n    return 1\n"
    assert sandbox(mode).run(program, OK).outcome is Outcome.FAIL  # and this test process is still here


@pytest.mark.parametrize("mode", MODES)
def test_a_program_cannot_forge_a_pass(mode):
    """It may write the result file itself and leave; its claimed outputs are still compared here."""
    program = (
        "import json, os\n"
        "json.dump({'status': 'ran', 'outcomes': [{'output': 999}], 'error': ''}, open('result.json', 'w'))\n"
        "os._exit(0)\n"
    )
    assert sandbox(mode).run(program, [CallTest("f()", 1)]).outcome is Outcome.FAIL
    always_equal = "class Yes:\n    def __eq__(self, other):\n        return True\ndef f():\n    return Yes()\n"
    result = sandbox(mode).run(always_equal, [CallTest("f()", 1)])
    assert result.outcome is Outcome.FAIL and "plain data" in result.error


@pytest.mark.parametrize("mode", MODES)
def test_output_is_capped_and_huge_output_does_not_reach_the_parent(mode):
    box = sandbox(mode, output_bytes=1000, file_bytes=1 << 20)
    program = "import sys, os\nos.write(1, b'x' * 5_000_000)\nprint('y' * 10**6)\ndef f():\n    return 1\n"
    result = box.run(program, OK)
    assert result.outcome is Outcome.PASS
    assert len(result.stdout) <= 1000


# -- the kernel layers alone ---------------------------------------------------------------------------------------
def test_the_isolation_report_says_which_layers_hold():
    report = Sandbox().isolation()
    assert "limits" in report and "python" in report
    if "network" in report:  # namespaces available (this CI machine: root with namespaces)
        assert "namespace" in report["network"] and "read-only" in report["filesystem"]
    else:
        assert "not available" in report["kernel"]
    assert "python" not in Sandbox(SandboxConfig(isolation="kernel", python_guard=False)).isolation()


def test_without_the_audit_hook_the_kernel_still_contains_writes_network_and_secrets(tmp_path, listener):
    box = kernel_sandbox()
    victim = tmp_path / "keep.txt"
    victim.write_text("precious")
    port = listener.getsockname()[1]
    for program in (
        f"def f():\n    open({str(victim)!r}, 'w').write('x')\n    return 1\n",
        "def f():\n    open('/tmp/envgym-kernel-escape.txt', 'w').write('x')\n    return 1\n",
        f"import socket\ndef f():\n    socket.create_connection(('127.0.0.1', {port}), timeout=2)\n    return 1\n",
    ):
        result = box.run(program, OK)
        assert result.outcome is Outcome.FAIL and ("Error" in result.error), program
    assert victim.read_text() == "precious"
    assert not Path("/tmp/envgym-kernel-escape.txt").exists()
    assert nobody_connected(listener)
    home = os.path.expanduser("~")
    if home not in ("/", ""):
        secret = Path(home) / ".envgym-sandbox-test-secret"
        secret.write_text("hunter2")
        try:
            program = f"def f():\n    return open({str(secret)!r}).read()\n"
            assert box.run(program, [CallTest("f()", "hunter2")]).outcome is Outcome.FAIL
        finally:
            secret.unlink()


def test_without_the_audit_hook_a_fork_bomb_hits_the_process_limit():
    box = kernel_sandbox(timeout_s=5.0, max_processes=16)
    if "nobody" not in box.isolation().get("user", ""):
        pytest.skip("the process limit binds the unprivileged uid of a root parent only")
    program = (
        "import os, time\n"
        "def f():\n"
        "    made = 0\n"
        "    try:\n"
        "        while True:\n"
        "            if os.fork() == 0:\n"
        "                time.sleep(30)\n"
        "                os._exit(0)\n"
        "            made += 1\n"
        "    except OSError:\n"
        "        return made < 64\n"
    )
    result = box.run(program, [CallTest("f()", True)])
    assert result.outcome is Outcome.PASS, result.error
    parent_still_works()


def test_bad_sandbox_configs_are_refused():
    with pytest.raises(InvalidConfig, match="timeout_s"):
        SandboxConfig(timeout_s=0)
    with pytest.raises(InvalidConfig, match="isolation"):
        SandboxConfig(isolation="docker")
    with pytest.raises(InvalidConfig, match="python_guard=True"):
        SandboxConfig(isolation="python", python_guard=False)
    with pytest.raises(InvalidConfig, match="all CallTest"):
        Sandbox().run("x = 1", [CallTest("f()", 1), StdioTest("", "")])
