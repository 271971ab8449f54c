"""Teachers by name (``uniform``, ``random``, ``error-proportional``, ``targeted``, and the curriculum-learning zoo
``tscl``, ``skill-it``, ``odm``, ``doremi``; STAT's ``stat-sel`` and ``stat-syn``; the lookahead ``oracle``; the
open-ended ``error-augment`` and
``random-examples``; the skill-tree ``tree-*`` policies; the LLM teachers ``llm`` and ``llm2llm``) or
``module:Class``."""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from typing import Any

from agents.base import Teacher
from agents.baselines import ErrorProportionalTeacher, RandomTeacher, UniformTeacher
from agents.doremi import DoReMiTeacher
from agents.llm2llm import LLM2LLMTeacher
from agents.llm_teacher import LLMTeacher
from agents.odm import ODMTeacher
from agents.open_ended import ErrorAugmentTeacher, RandomExamplesTeacher
from agents.oracle import OracleTeacher
from agents.skill_it import SkillItTeacher
from agents.skill_tree import (
    AlternatingTreeTeacher,
    FillBalancedTreeTeacher,
    LPTreeTeacher,
    RandomTreeTeacher,
    ThresholdTreeTeacher,
)
from agents.spar import SparTeacher
from agents.stat import STATSelTeacher, STATSynTeacher
from agents.targeted import TargetedTeacher
from agents.tscl import TSCLTeacher
from skills.errors import Error, InvalidConfig, unknown_name_error

TEACHERS: dict[str, type] = {
    "uniform": UniformTeacher,
    "random": RandomTeacher,
    "error-proportional": ErrorProportionalTeacher,
    "targeted": TargetedTeacher,
    "tscl": TSCLTeacher,
    "skill-it": SkillItTeacher,
    "odm": ODMTeacher,
    "doremi": DoReMiTeacher,
    # Not deployable: looks ahead in the environment itself (costs `candidates` extra trainings per step).
    "oracle": OracleTeacher,
    "error-augment": ErrorAugmentTeacher,
    "random-examples": RandomExamplesTeacher,
    "tree-threshold": ThresholdTreeTeacher,
    "tree-alternating": AlternatingTreeTeacher,
    "tree-fill-balanced": FillBalancedTreeTeacher,
    "tree-random": RandomTreeTeacher,
    "tree-lp": LPTreeTeacher,
    # STAT: missing-skill profiles; re-weighting the pool, or synthesis. With --teacher-* an LLM attributes errors.
    "stat-sel": STATSelTeacher,
    "stat-syn": STATSynTeacher,
    # SPaR: preference pairs from tree-search refinement of the student's own failures (instruction following).
    "spar": SparTeacher,
    # LLM teachers: an OpenAI-compatible endpoint (--teacher-base-url, --teacher-model).
    "llm": LLMTeacher,
    "llm2llm": LLM2LLMTeacher,
}
# Which environments each built-in teacher's plans fit: skill-list teachers return {skill: count}, open-ended ones
# lists of examples, skill-tree ones Explore/Exploit actions.
_OPEN_ENDED = ("error-augment", "random-examples")
# LLM teachers plan for both: weights or examples on a skill list, requests or examples on the open-ended env.
_LLM = ("llm", "llm2llm")
_SKILL_LIST = ("envgym/SkillList-v0", "envgym/InstructionFollowing-v0")
TEACHER_ENVS: dict[str, tuple[str, ...]] = {
    name: ("envgym/InstructionFollowing-v0",)
    if name == "spar"
    else (*_SKILL_LIST, "envgym/OpenEnded-v0")
    if name in _LLM
    else ("envgym/OpenEnded-v0",)
    if name in _OPEN_ENDED
    else ("envgym/SkillTree-v0",)
    if name.startswith("tree-")
    else _SKILL_LIST
    for name in TEACHERS
}
# Teachers whose constructor takes llm= (an LLMClientConfig's fields: the --teacher-* flags).
LLM_TEACHERS = _LLM
# Teachers that run without an LLM and use one only when given --teacher-* flags (STAT: LLM attribution; stat-syn's
# synthesis then goes to the LLM data engine at the same endpoint).
OPTIONAL_LLM_TEACHERS = ("stat-sel", "stat-syn", "spar")


def check_teacher_fits(spec: str, env_id: str) -> None:
    """Refuse a built-in teacher whose plans the environment cannot take (``module:Class`` is the user's call)."""
    known_envs = {env for envs in TEACHER_ENVS.values() for env in envs}
    if spec not in TEACHER_ENVS or env_id in TEACHER_ENVS[spec] or env_id not in known_envs:
        return  # module:Class is the user's call; an unknown env id gets its own did-you-mean when it is made
    fitting = [name for name, envs in TEACHER_ENVS.items() if env_id in envs]
    raise InvalidConfig(
        f"Teacher {spec!r} plans for {', '.join(TEACHER_ENVS[spec])}, not {env_id}. "
        f"Teachers for {env_id}: {', '.join(fitting) or 'none built in'} (or your own module:Class)."
    )


def teacher_names() -> list[str]:
    return list(TEACHERS)


def make_teacher(spec: str, *, seed: int | None = None, **kwargs: Any) -> Teacher:
    """Build a teacher from a built-in name or ``package.module:ClassName``.

    ``seed`` is passed to any teacher whose constructor takes one.
    """
    factory = resolve_teacher(spec)
    if seed is not None and "seed" in inspect.signature(factory).parameters:
        kwargs["seed"] = seed
    try:
        teacher = factory(**kwargs)
    except TypeError as err:
        raise InvalidConfig(f"Could not construct teacher {spec!r} with arguments {sorted(kwargs)}: {err}") from None
    if not callable(getattr(teacher, "act", None)):
        raise InvalidConfig(f"Expects a teacher with an act(observation, info) method; {spec!r} has none.")
    return teacher


def resolve_teacher(spec: str) -> Any:
    """The class (or factory) a teacher spec names: a built-in name or ``package.module:ClassName``."""
    if ":" in spec:
        module_name, _, attr = spec.partition(":")
        try:
            module = _import_from_cwd(module_name)
        except ImportError as err:
            raise InvalidConfig(
                f"Expects 'module:Class' with an importable module; could not import {module_name!r} ({err})."
            ) from None
        if not hasattr(module, attr):
            public = [n for n in dir(module) if not n.startswith("_")]
            raise unknown_name_error(f"attribute of module {module_name!r}", attr, public)
        return getattr(module, attr)
    if spec in TEACHERS:
        return TEACHERS[spec]
    raise unknown_name_error("teacher", spec, [*TEACHERS, "module:Class"])


def _import_from_cwd(module_name: str) -> Any:
    """Import ``module_name`` as ``python -m`` would, with the working directory first on ``sys.path`` for this
    import only: the process's ``sys.path`` is left as it was (shared workers import other users' modules)."""
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(module_name)
    finally:
        if added and cwd in sys.path:
            sys.path.remove(cwd)


def takes_llm(spec: str) -> bool:
    """Whether the teacher ``spec`` names talks to an LLM (its constructor takes ``llm=``, an endpoint)."""
    try:
        return "llm" in inspect.signature(resolve_teacher(spec)).parameters
    except (Error, TypeError, ValueError):  # make_teacher reports an unknown or unimportable teacher itself
        return False
