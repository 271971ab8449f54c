"""Clear, actionable errors with did-you-mean suggestions."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """`` Did you mean 'x'?`` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f" Did you mean {close[0]!r}?" if close else ""


def unknown_name_error(kind: str, name: str, choices: Iterable[str]) -> ValueError:
    choices = sorted(choices)
    return ValueError(f"Unknown {kind} {name!r}.{did_you_mean(name, choices)} Expects one of: {', '.join(choices)}.")
