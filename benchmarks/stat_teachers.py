"""STAT variants measured beside the paper's teachers in ``benchmarks/stat`` (not registered: ``module:Class``).

``envgym bench --teachers ...,benchmarks.stat_teachers:STATSelReplayTeacher`` from the repository root.
"""

from __future__ import annotations

from typing import Any

from agents.stat import STATSelTeacher


class STATSelReplayTeacher(STATSelTeacher):
    """STAT-Sel with 40% of each step spread evenly over every skill (the paper has none): does rehearsing the
    skills the profile leaves out stop the forgetting that costs STAT-Sel on the default student?"""

    def __init__(self, llm: Any = None, *, seed: int = 0) -> None:
        super().__init__(llm, seed=seed, replay=0.4)
