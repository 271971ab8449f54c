"""The error hierarchy every envgym package raises, and did-you-mean helpers.

It lives on the bottom floor (``skills``) so that every package can raise it without importing upward; the
public import path is :mod:`envgym.error`. Each class also subclasses the builtin it replaces (``ValueError`` or
``RuntimeError``), so callers that caught those keep working. Anything else escaping the library is a bug.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

_Config = TypeVar("_Config")


class Error(Exception):
    """Base of every error envgym raises on purpose: the message says what was expected, what was given and
    what to do. The CLI prints these as one line (exit code 2); any other exception is a library bug."""


class InvalidConfig(Error, ValueError):
    """A configuration that cannot work: a bad value, or a task whose prompts do not fit the student."""


class UnknownName(InvalidConfig):
    """A name (environment, teacher, task, skill, config field) that is not registered; says the closest one."""


class InvalidPlan(Error, ValueError):
    """A teacher's plan of the wrong type, shape or content (negative or fractional counts, bad examples)."""


class BudgetExceeded(InvalidPlan):
    """A plan that asks for more examples than this step's budget or the episode's remaining budget."""


class ResetNeeded(Error, RuntimeError):
    """``step()`` before ``reset()``, or after the episode ended."""


class Unverifiable(Error, ValueError):
    """An example the task cannot check independently (see :class:`skills.task.Verdict`)."""


class DamagedCheckpoint(Error, ValueError):
    """A checkpoint or run file that is missing, truncated or does not parse."""


class RunDirectoryLocked(Error, RuntimeError):
    """Another process is writing this run directory."""


class InvalidRunDirectory(Error, ValueError):
    """An output directory that cannot be used: not writable, a file, already holding a run, nothing to resume."""


class TeacherError(Error, RuntimeError):
    """The teacher's own code raised; the original exception is ``__cause__`` and the run can resume."""


class LLMUnavailable(Error, ConnectionError):
    """An OpenAI-compatible server that cannot serve a request: down, too slow, an HTTP error or a wrong model
    name. The message names the URL and what to check; a run's completed steps are kept and it can resume."""


class StudentLost(Error, RuntimeError):
    """A student in another process (a Ray actor) died mid-call; the run resumes from its last checkpoint."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """`` Did you mean 'x'?`` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f" Did you mean {close[0]!r}?" if close else ""


def unknown_name_error(kind: str, name: str, choices: Iterable[str]) -> UnknownName:
    choices = sorted(choices)
    return UnknownName(f"Unknown {kind} {name!r}.{did_you_mean(name, choices)} Expects one of: {', '.join(choices)}.")


def config_from_dict(cls: type[_Config], values: Mapping[str, Any], what: str) -> _Config:
    """``cls(**values)`` for a config dataclass, but an unknown field is an :class:`UnknownName` with a
    did-you-mean (a bare ``TypeError: unexpected keyword`` names neither the choices nor the closest one)."""
    known = [f.name for f in dataclasses.fields(cls)]
    for name in values:
        if name not in known:
            raise unknown_name_error(what, str(name), known)
    return cls(**values)
