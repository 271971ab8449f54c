"""Command-line flags generated from config dataclasses, as TRL's ``HfArgumentParser`` does: one ``--flag`` per
field, typed from its annotation, with the field's help text. The CLI never keeps a second copy of a config."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

_SCALARS = {"int": int, "float": float, "str": str, "bool": bool}


def _flag_type(field: dataclasses.Field) -> type:
    """The scalar type a flag parses to: the default's type, else the first scalar named in the annotation
    (``int | None`` -> int); free-form fields (``Any``: a name or an object) parse as str."""
    if isinstance(field.default, (bool, int, float, str)):
        return type(field.default)
    annotation = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", "str")
    for part in annotation.replace(" ", "").split("|"):
        if part in _SCALARS:
            return _SCALARS[part]
    return str


def _list_or_str(text: str) -> str | list[str]:
    """``"q_proj,v_proj"`` -> a list; a single name stays a string (``"all-linear"``)."""
    return [item for item in text.split(",") if item] if "," in text else text


def add_config_flags(
    parser: argparse.ArgumentParser, cls: type, *, prefix: str = "", skip: tuple[str, ...] = (), title: str = ""
) -> None:
    """Add ``--<prefix><field-name>`` for each field of the dataclass ``cls`` (defaults stay None: a flag that is
    not given leaves the config's own default, or a loaded config's value, in place)."""
    group = parser.add_argument_group(title or f"{cls.__name__} fields")
    for field in dataclasses.fields(cls):
        if field.name in skip:
            continue
        flag = "--" + prefix + field.name.replace("_", "-")
        kwargs: dict[str, Any] = {"dest": _dest(prefix, field.name), "default": None}
        help_text = field.metadata.get("help", "")
        default = "" if field.default is dataclasses.MISSING else f" (default: {field.default!r})"
        kwargs["help"] = (help_text + default).replace("%", "%%")
        kind = _flag_type(field)
        if kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            is_list = isinstance(field.type, str) and "list" in field.type
            kwargs["type"] = _list_or_str if is_list else kind
            kwargs["metavar"] = "NAME[,NAME...]" if is_list else kind.__name__.upper()
        group.add_argument(flag, **kwargs)


def given_fields(args: argparse.Namespace, cls: type, *, prefix: str = "", skip: tuple[str, ...] = ()) -> dict:
    """``{field: value}`` for the flags of ``cls`` given on the command line."""
    values = {}
    for field in dataclasses.fields(cls):
        if field.name in skip:
            continue
        value = getattr(args, _dest(prefix, field.name), None)
        if value is not None:
            values[field.name] = value
    return values


def _dest(prefix: str, name: str) -> str:
    return prefix.replace("-", "_") + name
