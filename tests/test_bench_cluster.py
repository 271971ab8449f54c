"""`envgym bench` at scale: failed episodes retried from their checkpoints, and a grid spread over a two-node
Ray cluster (two raylets on loopback, `ray.cluster_utils.Cluster`), as on a real multi-node cluster."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from envgym.bench import run_bench

TINY = {"steps": 1, "budget": 16, "n_val": 5, "n_test": 5}
FLAKY = """
from pathlib import Path

from agents import UniformTeacher


class FailsOnce(UniformTeacher):
    def act(self, observation, info):
        marker = Path("flaky.seen")  # in the working directory: the first attempt leaves it, the retry finds it
        if not marker.exists():
            marker.write_text("")
            raise RuntimeError("a transient failure")
        return super().act(observation, info)
"""


@pytest.mark.slow
def test_a_failed_episode_is_retried_from_its_checkpoint_and_recorded_once(tmp_path, monkeypatch):
    (tmp_path / "tests_flaky_teacher.py").write_text(FLAKY)
    monkeypatch.chdir(tmp_path)
    result = run_bench("tests_flaky_teacher:FailsOnce", "0", tmp_path / "out", env_kwargs=TINY, jobs=1, progress=False)
    assert result.failed == [] and result.ran == 1
    report = json.loads((tmp_path / "out" / "tests_flaky_teacher-FailsOnce" / "seed0" / "report.json").read_text())
    assert report["steps"] == 1
    assert not (tmp_path / "out" / "tests_flaky_teacher-FailsOnce" / "seed0" / "error.json").exists()

    (tmp_path / "flaky.seen").unlink()
    none = run_bench(
        "tests_flaky_teacher:FailsOnce", "1", tmp_path / "out2", env_kwargs=TINY, jobs=1, progress=False, retries=0
    )
    assert [f["attempts"] for f in none.failed] == [1] and "transient failure" in none.failed[0]["message"]


@pytest.mark.slow
def test_a_bench_spreads_over_a_two_node_cluster(tmp_path, monkeypatch):
    ray = pytest.importorskip("ray")
    import tempfile

    from ray.cluster_utils import Cluster

    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    # Ray's files in a short private directory (its unix socket paths must stay under 108 bytes).
    temp_dir = tempfile.mkdtemp(prefix="eg-ray-", dir="/tmp")
    (Path(temp_dir) / "ray").mkdir()
    monkeypatch.setenv("RAY_TMPDIR", temp_dir)
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "include_dashboard": False},
    )
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        monkeypatch.setenv("RAY_ADDRESS", cluster.address)  # as `ray start --head` users set it
        result = run_bench("uniform,random", "0-1", tmp_path / "out", env_kwargs=TINY, progress=False)
        assert result.failed == [] and result.ran == 4
        board = json.loads((tmp_path / "out" / "leaderboard.json").read_text())
        assert board["episodes"]["finished"] == 4
        assert len(cluster.list_all_nodes()) == 2
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)


KILLER = """
import os
import signal
from pathlib import Path

from agents import UniformTeacher


class KillsItsStudentOnce(UniformTeacher):
    def attach(self, env):
        self.env = env

    def act(self, observation, info):
        marker = Path("killed.seen")
        if info["step"] == 1 and not marker.exists():
            marker.write_text("")
            os.kill(self.env.unwrapped.student.actor_pid(), signal.SIGKILL)
        return super().act(observation, info)
"""


@pytest.mark.slow
def test_a_student_actor_killed_inside_a_bench_episode_is_retried_to_the_same_numbers(tmp_path, monkeypatch):
    (tmp_path / "tests_killer_teacher.py").write_text(KILLER)
    monkeypatch.chdir(tmp_path)
    kwargs = {**TINY, "steps": 2, "student_config": {"placement": "ray", "ray_num_cpus": 1, "num_threads": 1}}
    result = run_bench(
        "uniform,tests_killer_teacher:KillsItsStudentOnce",
        "0",
        tmp_path / "out",
        env_kwargs=kwargs,
        jobs=2,
        progress=False,
    )
    assert result.failed == [] and (tmp_path / "killed.seen").exists()  # the kill happened, and was survived
    killed = json.loads(
        (tmp_path / "out" / "tests_killer_teacher-KillsItsStudentOnce" / "seed0" / "report.json").read_text()
    )
    whole = json.loads((tmp_path / "out" / "uniform" / "seed0" / "report.json").read_text())
    assert killed["test_accuracy"] == whole["test_accuracy"]  # resumed from its checkpoint: the same numbers
