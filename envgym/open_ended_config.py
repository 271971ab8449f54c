"""Configuration of :class:`envgym.OpenEndedEnv`: the skill-list episode fields plus how errors become text."""

from __future__ import annotations

from dataclasses import dataclass, field

from envgym.skill_list_config import SkillListConfig, _check_int


@dataclass
class OpenEndedConfig(SkillListConfig):
    """Everything that defines an open-ended teaching episode (``gym.make("envgym/OpenEnded-v0", ...)`` keywords)."""

    error_window: int = field(
        default=8, metadata={"help": "Validation errors shown as text in the observation (all go to info)."}
    )
    error_text_chars: int = field(
        default=1024,
        metadata={"help": "Longest observation error text; longer text is cut at a line end and ends with '...'."},
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_int("error_window", self.error_window, minimum=0)
        _check_int("error_text_chars", self.error_text_chars, minimum=16)
