"""Run-directory file handling shared by the environments, the runner and the CLI.

Strict JSON everywhere (NaN and infinities become ``null``: jq and JavaScript reject ``NaN``), atomic writes
(a kill leaves the old or the new file, never half of one), checkpoint manifests (size and SHA-256 of every
file, so a truncated file is named instead of failing deep inside a loader), and one exclusive lock per run
directory, so two processes never interleave their writes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from skills.errors import DamagedCheckpoint, RunDirectoryLocked
from skills.storage import dumps, jsonable, replace_dir_atomic, write_examples_jsonl, write_text_atomic

__all__ = [
    "LOCK_FILE",
    "MANIFEST",
    "acquire_run_lock",
    "dumps",
    "jsonable",
    "read_json",
    "replace_dir_atomic",
    "run_lock",
    "verify_manifest",
    "write_examples_jsonl",
    "write_manifest",
    "write_text_atomic",
]

MANIFEST = "manifest.json"
LOCK_FILE = ".envgym.lock"


def read_json(path: Path, what: str = "Run file", fix: str = "") -> Any:
    """Parse ``path``; a missing, truncated or corrupt file is a :class:`DamagedCheckpoint` naming it."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise DamagedCheckpoint(f"{what} {str(path)!r} is missing.{fix}") from None
    except (OSError, ValueError) as err:
        raise DamagedCheckpoint(f"{what} {str(path)!r} is damaged ({type(err).__name__}: {err}).{fix}") from None


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def write_manifest(directory: Path) -> None:
    """Record the size and SHA-256 of every file below ``directory`` (written last, so it seals the rest)."""
    files = sorted(p for p in directory.rglob("*") if p.is_file() and p.name != MANIFEST)
    entries = {str(p.relative_to(directory)): {"bytes": p.stat().st_size, "sha256": _digest(p)} for p in files}
    (directory / MANIFEST).write_text(json.dumps(entries, indent=1))


def verify_manifest(directory: Path, fix: str = "") -> None:
    """Raise :class:`DamagedCheckpoint` naming the first file that is missing or differs from the manifest."""
    entries = read_json(directory / MANIFEST, "Checkpoint manifest", fix)
    if not isinstance(entries, dict):
        raise DamagedCheckpoint(f"Checkpoint manifest {str(directory / MANIFEST)!r} is damaged.{fix}")
    for name, entry in entries.items():
        path = directory / name
        if not path.is_file():
            raise DamagedCheckpoint(f"Checkpoint file {str(path)!r} is missing.{fix}")
        size = path.stat().st_size
        if not isinstance(entry, dict) or size != entry.get("bytes") or _digest(path) != entry.get("sha256"):
            raise DamagedCheckpoint(
                f"Checkpoint file {str(path)!r} is damaged ({size:,} bytes, expected {entry.get('bytes', '?'):,} "
                f"with a matching SHA-256).{fix}"
            )


def run_lock(directory: Path) -> FileLock:
    """The run directory's exclusive lock. One instance per path in a process (re-entrant), so the CLI can take
    it before loading anything and ``run_episode`` takes it again without deadlocking."""
    return FileLock(str(Path(directory).resolve() / LOCK_FILE), timeout=0, is_singleton=True)


def acquire_run_lock(directory: Path) -> FileLock:
    lock = run_lock(directory)
    try:
        lock.acquire()
    except Timeout:
        raise RunDirectoryLocked(
            f"Run directory {str(directory)!r} is in use by another envgym process (lock {LOCK_FILE}). "
            "Wait for it to finish, or choose another --out."
        ) from None
    return lock
