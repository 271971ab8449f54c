"""envgym: a Gymnasium testbed where a teacher improves a student language model through data.

Importing ``envgym`` registers its environments with Gymnasium (``gym.make("envgym/SkillList-v0")``).
"""

from envgym.core import TeachingEnv
from envgym.env_checker import check_teaching_env
from envgym.open_ended_config import OpenEndedConfig
from envgym.open_ended_env import DataRequest, OpenEndedEnv
from envgym.plans import CountPlan, ExamplesPlan, PreferencePlan, ReweightPlan, SynthesisPlan
from envgym.registration import ENV_IDS, LBT_ENV_IDS, register_envs
from envgym.runner import run_episode
from envgym.skill_list_config import SkillListConfig
from envgym.skill_list_env import SkillListEnv
from envgym.skill_tree_config import SkillTreeConfig
from envgym.skill_tree_env import Exploit, Explore, SkillTreeEnv

register_envs()

__all__ = [
    "ENV_IDS",
    "LBT_ENV_IDS",
    "CountPlan",
    "DataRequest",
    "ExamplesPlan",
    "Exploit",
    "Explore",
    "OpenEndedConfig",
    "OpenEndedEnv",
    "PreferencePlan",
    "ReweightPlan",
    "SkillListConfig",
    "SkillListEnv",
    "SkillTreeConfig",
    "SkillTreeEnv",
    "SynthesisPlan",
    "TeachingEnv",
    "check_teaching_env",
    "run_episode",
]
