"""A student in a Ray actor: the same :class:`~students.base.Student` Protocol, the model in another process or node.

``HFStudentConfig(placement="ray", ray_num_gpus=1)`` (``--student-placement ray --student-ray-num-gpus 1``) makes
:func:`students.factory.make_student` return a :class:`RayStudent`. Its actor holds an :class:`HFStudent` built
from the same directory and config, requests ``ray_num_gpus`` GPUs or ``ray_num_cpus`` CPUs, and uses as many
torch threads as CPUs it was given. An environment trains and evaluates it without noticing: with the same seed it
reaches the same numbers as the local student on the same hardware.

Everything crosses by value, so it works across nodes without a shared filesystem: ``save``/``load`` move the
checkpoint files' bytes, snapshots live in Ray's object store (dropped with their reference). If the actor dies
(a node lost, out of memory), the call raises :class:`StudentLost`; nothing already written is lost and the run
resumes from its last checkpoint (``envgym run --resume DIR``) with a new actor.

Ray must be running (``ray.init()``, or ``RAY_ADDRESS`` for a cluster): ``envgym run`` and ``envgym bench`` start a
local one when the student asks for Ray.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from skills.errors import InvalidConfig, ResetNeeded, StudentLost
from skills.task import Example, PreferencePair
from students.hf_student_config import HFStudentConfig


class _StudentActor:
    """Runs in the actor: an HFStudent, and file bytes in and out for save/load."""

    def __init__(self, model_dir: str, config: dict[str, Any]) -> None:
        from students.hf_student import HFStudent

        self.student = HFStudent(model_dir, HFStudentConfig.from_dict(config))

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.student, method)(*args, **kwargs)

    def save_bytes(self) -> dict[str, bytes]:
        with tempfile.TemporaryDirectory() as tmp:
            self.student.save(tmp)
            return {path.name: path.read_bytes() for path in Path(tmp).iterdir() if path.is_file()}

    def load_bytes(self, files: dict[str, bytes]) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            for name, data in files.items():
                (Path(tmp) / name).write_bytes(data)
            self.student.load(tmp)

    def pid(self) -> int:
        import os

        return os.getpid()


class RayStudent:
    """An :class:`~students.hf_student.HFStudent` in a Ray actor (see the module docstring)."""

    def __init__(self, model_dir: str | Path, config: HFStudentConfig | None = None) -> None:
        import ray

        if not ray.is_initialized():
            raise InvalidConfig(
                "Expects Ray to be running for a student with placement='ray': call ray.init() (or ray.init(address="
                "...) for a cluster) first; `envgym run` and `envgym bench` start a local Ray themselves."
            )
        config = config or HFStudentConfig()
        self.config = config
        self.model_dir = Path(model_dir)
        threads = max(1, math.floor(config.ray_num_cpus)) if config.ray_num_cpus else 1
        inner = dataclasses.replace(config, placement="local", num_threads=config.num_threads or threads)
        actor = ray.remote(_StudentActor).options(
            num_cpus=config.ray_num_cpus, num_gpus=config.ray_num_gpus, max_restarts=0
        )
        self._actor = actor.remote(str(self.model_dir), dataclasses.asdict(inner))
        self._closed = False
        self._num_parameters = self._call("num_parameters")  # also waits for the model to load (or fail)

    # -- the Student Protocol ----------------------------------------------------------------------------
    def train(self, examples: Sequence[Example], *, seed: int) -> dict[str, Any]:
        return self._call("train", list(examples), seed=seed)

    def train_preferences(self, pairs: Sequence[PreferencePair], *, seed: int) -> dict[str, Any]:
        return self._call("train_preferences", list(pairs), seed=seed)

    def answer(self, questions: Sequence[str]) -> list[str]:
        return self._call("answer", list(questions))

    def sample_answers(self, questions: Sequence[str], k: int, *, temperature: float, seed: int) -> list[list[str]]:
        return self._call("sample_answers", list(questions), k, temperature=temperature, seed=seed)

    def reset(self) -> None:
        self._call("reset")

    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for name, data in self._get(self._actor.save_bytes.remote(), "save").items():
            (directory / name).write_bytes(data)

    def load(self, directory: str | Path) -> None:
        files = {path.name: path.read_bytes() for path in Path(directory).iterdir() if path.is_file()}
        self._get(self._actor.load_bytes.remote(files), "load")

    def num_parameters(self) -> int:
        return self._num_parameters

    def check_inputs(self, questions: Sequence[str], answers: Sequence[str] | None = None) -> list[str | None]:
        return self._call("check_inputs", list(questions), None if answers is None else list(answers))

    def snapshot(self) -> Any:
        """A reference to the actor's training state in Ray's object store (freed when dropped)."""
        self._check_open("snapshot")
        return self._actor.call.remote("snapshot")

    def restore(self, snapshot: Any) -> None:
        self._get(self._actor.call.remote("restore", snapshot), "restore")

    def close(self) -> None:
        """Kill the actor (its model and memory go with it)."""
        import ray

        if not self._closed:
            self._closed = True
            ray.kill(self._actor)

    def actor_pid(self) -> int:
        """The actor's process id (tests and diagnostics)."""
        return self._get(self._actor.pid.remote(), "pid")

    # -- plumbing ------------------------------------------------------------------------------------------
    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        self._check_open(method)
        return self._get(self._actor.call.remote(method, *args, **kwargs), method)

    def _check_open(self, method: str) -> None:
        if self._closed:
            raise ResetNeeded(f"Expects an open student; {method}() was called after close().")

    def _get(self, ref: Any, method: str) -> Any:
        import ray

        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as err:
            cause = getattr(err, "cause", None)
            if isinstance(cause, Exception):
                raise cause from None  # the student's own error (an envgym error with its message), as if local
            raise
        except ray.exceptions.RayActorError as err:
            self._closed = True
            raise StudentLost(
                f"The student's Ray actor died during {method}() ({type(err).__name__}). Nothing already written is "
                "lost: resume the run from its last checkpoint (envgym run --resume DIR), which starts a new actor."
            ) from None
