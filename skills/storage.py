"""Writing things down once: JSON conversion, atomic files and directories, example JSONL.

Shared by every layer (tasks, students, environments, the runner), so each lives here once.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from skills.task import Example


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


def write_examples_jsonl(path: Path, examples: Iterable[Example]) -> None:
    """One strict-JSON ``Example.to_dict()`` per line."""
    with open(path, "w") as f:
        for example in examples:
            f.write(dumps(example.to_dict()) + "\n")


def read_examples_jsonl(path: Path) -> list[Example]:
    with open(path) as f:
        return [Example.from_dict(json.loads(line)) for line in f if line.strip()]
