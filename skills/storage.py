"""Writing things down once: JSON conversion, atomic files and directories, example JSONL.

Shared by every layer (tasks, students, environments, the runner), so each lives here once.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock

from skills.errors import InvalidConfig
from skills.task import Example, PreferencePair


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON types: numpy arrays/scalars as lists/numbers, tuples and sets as lists,
    non-finite floats as None, anything else exotic as its ``repr``."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    return repr(value)


def dumps(value: Any, **kwargs: Any) -> str:
    """Strict JSON text (``allow_nan=False`` after :func:`jsonable`)."""
    return json.dumps(jsonable(value), allow_nan=False, **kwargs)


def write_text_atomic(path: Path, text: str) -> None:
    """A kill leaves the old or the new file, never half of one."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def replace_dir_atomic(built: Path, target: Path) -> None:
    """Put the complete directory ``built`` at ``target``: a kill at any moment leaves either the previous
    ``target`` or the new one (or, between the two renames, the previous one at ``target.old``)."""
    built, target = Path(built), Path(target)
    old = target.with_name(f"{target.name}.old")
    if target.exists():
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
    built.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def build_dir_once(target: Path, is_complete: Callable[[Path], bool], build: Callable[[Path], Path]) -> Path:
    """``target`` if it is complete, else built now: ``build(workdir)`` makes the directory inside a temporary
    ``workdir`` beside ``target`` and returns it, and it is moved into place atomically (a killed build leaves
    nothing behind). A file lock beside ``target`` makes concurrent callers (test workers, episodes of a bench on
    one machine) build it once: the others wait, then use it."""
    target = Path(target)
    if is_complete(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target.with_name(f".{target.name}.lock"))):
        if not is_complete(target):  # another process may have built it while this one waited
            with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}-building-") as workdir:
                replace_dir_atomic(build(Path(workdir)), target)
    return target


def write_examples_jsonl(path: Path, examples: Iterable[Example | PreferencePair]) -> None:
    """One strict-JSON ``to_dict()`` per line (examples, and the preference pairs of a preference plan)."""
    with open(path, "w") as f:
        for example in examples:
            f.write(dumps(example.to_dict()) + "\n")


def read_examples_jsonl(path: Path) -> list[Example | PreferencePair]:
    """What :func:`write_examples_jsonl` wrote: a line with ``chosen`` is a preference pair, any other an example."""
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [PreferencePair.from_dict(row) if "chosen" in row else Example.from_dict(row) for row in rows]


def read_problem_rows(path: Path, formats: str, samples: Path) -> list[tuple[str, dict[str, Any]]]:
    """A task's problem file: one JSON object per line, as ``(path:line, row)`` for error messages; blank lines
    skipped. Raises InvalidConfig naming the file (missing, ``formats`` expected; samples ship in ``samples``), the
    line that does not parse or is not an object, or a file without any problem."""
    if not path.is_file():
        raise InvalidConfig(
            f"Expects a {formats} JSONL file; {str(path)!r} does not exist. The task reads local files only; samples "
            f"ship in {samples}."
        )
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(line)
        except ValueError as err:
            raise InvalidConfig(f"Expects one JSON object per line; {where} does not parse ({err}).") from None
        if not isinstance(row, dict):
            raise InvalidConfig(f"Expects one JSON object per line; {where} holds {type(row).__name__}.")
        rows.append((where, row))
    if not rows:
        raise InvalidConfig(f"Expects at least one problem; {str(path)!r} holds none.")
    return rows
