"""Configuration of :class:`envgym.SkillTreeEnv`: the skill-list episode fields plus the shape of the skill tree."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from envgym.skill_list_config import SkillListConfig, _check_int
from skills.errors import InvalidConfig


@dataclass
class SkillTreeConfig(SkillListConfig):
    """Everything that defines a skill-tree teaching episode (``gym.make("envgym/SkillTree-v0", ...)`` keywords)."""

    max_subskills: int = field(
        default=4, metadata={"help": "Subskill slots per skill in the observation; exploring beyond them is refused."}
    )
    initial_subskills: int = field(
        default=0,
        metadata={
            "help": "Subskills each skill starts an episode with (the proposer's first ones), allocation 0. "
            "DataEnvGym starts from empty trees: the first step explores."
        },
    )
    proposer: Any = field(
        default="bands",
        metadata={
            "help": "Who proposes subskills when a teacher explores: 'bands' (difficulty bands of the task's "
            "generator) or an object with propose(task, skill, existing, n) (skills.subskills.SubskillProposer)."
        },
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_int("max_subskills", self.max_subskills, minimum=1)
        _check_int("initial_subskills", self.initial_subskills, minimum=0)
        if self.initial_subskills > self.max_subskills:
            raise InvalidConfig(
                f"Expects initial_subskills <= max_subskills={self.max_subskills}; actual {self.initial_subskills}."
            )
        if self.data_engine != "procedural":
            raise InvalidConfig(
                f"Expects data_engine='procedural' for the skill-tree environment, which draws each subskill's data "
                f"from a difficulty band of the task's generator; actual {self.data_engine!r}. The LLM data engine "
                "serves envgym/SkillList-v0 and envgym/OpenEnded-v0."
            )
        if self.pool_size or self.pool_file is not None:
            raise InvalidConfig(
                f"Expects no fixed pool for the skill-tree environment, whose subskills draw from difficulty bands of "
                f"the task's generator; actual pool_size={self.pool_size}, pool_file={self.pool_file!r}. Fixed pools "
                "serve envgym/SkillList-v0 and envgym/OpenEnded-v0."
            )
