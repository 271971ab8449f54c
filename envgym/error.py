"""envgym's error types (cf. ``gymnasium.error``).

Every error the library raises on purpose is an :class:`Error`; each also subclasses the builtin it replaces
(``ValueError`` or ``RuntimeError``), so existing ``except ValueError`` code keeps working. The classes are
defined in :mod:`skills.errors`, the bottom floor, so that tasks and students can raise them too.

Example:
    >>> import gymnasium as gym, envgym
    >>> from envgym.error import InvalidPlan
    >>> env = gym.make("envgym/SkillList-v0", steps=1, budget=8, n_val=4, n_test=4)
    >>> _ = env.reset(seed=0)
    >>> try:
    ...     env.step({"sub_borrow": -1})
    ... except InvalidPlan as err:
    ...     print(type(err).__name__, isinstance(err, ValueError))
    InvalidPlan True
"""

from skills.errors import (
    BudgetExceeded,
    DamagedCheckpoint,
    Error,
    InvalidConfig,
    InvalidPlan,
    InvalidRunDirectory,
    LLMUnavailable,
    ResetNeeded,
    RunDirectoryLocked,
    StudentLost,
    TeacherError,
    UnknownName,
    Unverifiable,
)

__all__ = [
    "BudgetExceeded",
    "DamagedCheckpoint",
    "Error",
    "InvalidConfig",
    "InvalidPlan",
    "InvalidRunDirectory",
    "LLMUnavailable",
    "ResetNeeded",
    "RunDirectoryLocked",
    "StudentLost",
    "TeacherError",
    "UnknownName",
    "Unverifiable",
]
