"""Shared fixtures. Caches go to a per-session temporary directory, never the user's home."""

from __future__ import annotations

import os
import tempfile

# Always overridden (not setdefault): a developer's own ENVGYM_HOME or HF_HOME must never receive test builds.
# ENVGYM_TEST_HOME keeps one cache across sessions (CI points it inside the checkout) without touching the real one.
_CACHE = os.environ.get("ENVGYM_TEST_HOME") or tempfile.mkdtemp(prefix="envgym-tests-")
os.environ["ENVGYM_HOME"] = os.path.join(_CACHE, "envgym")
os.environ["MPLCONFIGDIR"] = os.path.join(_CACHE, "matplotlib")
os.environ["HF_HOME"] = os.path.join(_CACHE, "hf")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
# Under `pytest -n N` (pytest-xdist) the workers share the cores: each student, and every process a test starts,
# gets cores // N torch threads instead of min(2, cores) each, so N workers never oversubscribe the machine.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    _threads = str(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))
    os.environ.setdefault("ENVGYM_NUM_THREADS", _threads)
    os.environ.setdefault("OMP_NUM_THREADS", _threads)

import pytest  # noqa: E402

# Small splits keep evaluation fast; the shipped default student is used unless a test says otherwise.
SMALL = {"n_val": 40, "n_test": 40}


@pytest.fixture(scope="session")
def default_dir():
    from students import default_student_dir

    return default_student_dir()


@pytest.fixture
def make_env():
    import gymnasium as gym

    import envgym  # noqa: F401

    def factory(**kwargs):
        return gym.make("envgym/SkillList-v0", **{**SMALL, **kwargs})

    return factory


@pytest.fixture(scope="session")
def teacher_server():
    """The real local teacher server (llama.cpp serving Gemma-3-270M) on a free loopback port, one per session.

    Skipped, with the reason, only where the ``teacher-server`` extra is not installed."""
    from envgym.serve import INSTALL_HINT, extra_installed, serve_teacher

    if not extra_installed():
        pytest.skip(INSTALL_HINT)
    with serve_teacher(port=None, n_threads=1) as server:
        yield server


def pytest_collection_modifyitems(config, items):
    """Under `mutmut run`, run a mutant's covering tests fastest first (the durations mutmut recorded), so the first
    failing test (mutmut passes -x) comes after seconds, not after whichever slow tests its set order put first."""
    if "__mutmut_" not in os.environ.get("MUTANT_UNDER_TEST", ""):
        return
    import json
    from pathlib import Path

    try:
        durations = json.loads(Path("mutmut-stats.json").read_text(encoding="utf-8"))["duration_by_test"]
    except (OSError, ValueError, KeyError):
        return
    items.sort(key=lambda item: durations.get(item.nodeid, float("inf")))
