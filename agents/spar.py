"""SPaR (Cheng et al., 2024): self-play with tree-search refinement, as a teacher of preference pairs.

Each step the teacher samples ``samples`` responses per training prompt from the environment's own student (the
*actor*), judges them, and refines every failing one by tree search (:mod:`agents.tree_search`) until the judge
accepts a refinement; ``(chosen = refined, rejected = original)`` becomes a DPO pair. The pairs differ only where
the instruction was (not) followed, which is SPaR's point. ``pairs="independent"`` is the paper's baseline: per
prompt, the best judged sample against the worst (different responses, not minimal edits).

The step's plan is a :class:`~envgym.plans.PreferencePlan`: the environment verifies every chosen answer, keeps
held-out prompts out, charges one budget unit per pair and trains with DPO. Iterating is stepping: the actor of
step ``t`` is the student after step ``t - 1``.

Files (with ``out_dir``): ``trees.jsonl`` (one record per prompt: samples, judgements, trees, pairs),
``pairs.jsonl`` and ``refiner_data.jsonl`` (each refinement on a solved tree's path: instruction, response, the
judge's critique, the refined response; training data for a refiner). A prompt's record, pairs and refinements
are appended as soon as it is done; each step starts by rewriting the three files from the complete records, so
a run killed mid-step resumes from the prompts it finished (same numbers: every random choice derives from the
seed, the step and the prompt index).

Example:
    >>> import gymnasium as gym, envgym
    >>> from agents.spar import SparTeacher
    >>> env = gym.make("envgym/InstructionFollowing-v0", steps=1, budget=64)
    >>> teacher = SparTeacher(prompts=8, samples=2)
    >>> teacher.attach(env)
    >>> plan = teacher.act(*env.reset(seed=0))  # doctest: +SKIP
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agents.tree_search import Tree, TreeSearchConfig, search
from envgym.plans import PreferencePlan
from skills.errors import InvalidConfig, unknown_name_error
from skills.judges import Judge, Judgement, LLMJudge, LLMRefiner, ProgrammaticJudge, ProgrammaticRefiner, Refiner
from skills.llm.client import LLMClient
from skills.storage import write_text_atomic
from skills.task import PreferencePair

PAIR_SOURCES = ("tree", "independent")
ROOTS = ("all", "one")
JUDGES = ("programmatic", "llm")
TREES_FILE, PAIRS_FILE, REFINER_FILE = "trees.jsonl", "pairs.jsonl", "refiner_data.jsonl"


class SparTeacher:
    """SPaR's pair builder as a teacher that returns a :class:`~envgym.plans.PreferencePlan` each step.

    Args:
        prompts: training prompts per step, drawn in turn from every skill (the environment's training pool: no
            held-out prompt is ever drawn).
        samples: actor responses sampled per prompt (``temperature``).
        pairs: ``"tree"`` (SPaR: refined vs original) or ``"independent"`` (best vs worst independent sample).
        roots: which failing samples of a prompt are refined (tree pairs): ``"all"`` (every distinct one) or
            ``"one"`` (one drawn with the prompt's seed, as SPaR's released code does: at most one pair a prompt).
        search: the tree search (:class:`~agents.tree_search.TreeSearchConfig` or a dict of its fields).
        judge: ``"programmatic"`` (the task's checkers), ``"llm"`` (``llm``'s endpoint), a Judge object, or None:
            ``"llm"`` when ``llm`` is given, else ``"programmatic"``.
        refiner: ``"programmatic"`` (minimal edits by the task), ``"llm"``, a Refiner object, or None: the
            same kind as ``judge``.
        llm: an :class:`~skills.llm.client.LLMClient` or a dict of its config, for an LLM judge or refiner.
        out_dir: where the pair files go (``envgym spar`` passes the run directory); None writes none.
        seed: every choice derives from it, the step and the prompt index.
    """

    def __init__(
        self,
        *,
        prompts: int = 64,
        samples: int = 4,
        temperature: float = 1.0,
        pairs: str = "tree",
        roots: str = "all",
        search: TreeSearchConfig | Mapping[str, Any] | None = None,
        judge: str | Judge | None = None,
        refiner: str | Refiner | None = None,
        llm: LLMClient | Mapping[str, Any] | None = None,
        out_dir: str | Path | None = None,
        seed: int = 0,
    ) -> None:
        for name, value in (("prompts", prompts), ("samples", samples)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidConfig(f"Expects {name} to be an integer >= 1; actual {value!r}.")
        if not isinstance(temperature, (int, float)) or not temperature > 0:
            raise InvalidConfig(f"Expects temperature > 0 (sampled responses); actual {temperature!r}.")
        if pairs not in PAIR_SOURCES:
            raise unknown_name_error("pair source", str(pairs), PAIR_SOURCES)
        if roots not in ROOTS:
            raise unknown_name_error("choice of tree roots", str(roots), ROOTS)
        if judge is None:
            judge = "programmatic" if llm is None else "llm"
        for what, choice in (("judge", judge), ("refiner", refiner)):
            if isinstance(choice, str) and choice not in JUDGES:
                raise unknown_name_error(what, choice, JUDGES)
        self.prompts, self.samples, self.temperature, self.pairs = prompts, samples, float(temperature), pairs
        self.roots = roots
        self.search_config = (
            search
            if isinstance(search, TreeSearchConfig)
            else TreeSearchConfig.from_dict(search or {})
            if isinstance(search, Mapping) or search is None
            else search
        )
        self.judge_choice, self.refiner_choice = judge, judge if refiner is None else refiner
        uses_llm = "llm" in (self.judge_choice, self.refiner_choice)
        if uses_llm and llm is None:
            raise InvalidConfig(
                "Expects an LLM endpoint (llm=LLMClient or a dict with base_url, model) for an 'llm' judge or "
                "refiner; actual none. Pass --teacher-base-url/--teacher-model, or use judge='programmatic'."
            )
        self.client = (llm if isinstance(llm, LLMClient) else LLMClient(dict(llm))) if uses_llm else None
        self.out_dir = None if out_dir is None else Path(out_dir)
        self.seed = seed
        self.env: Any = None
        self.judge: Judge | None = None
        self.refiner: Refiner | None = None

    def attach(self, env: Any) -> None:
        """Give the teacher the environment whose student is its actor (it samples that student's responses)."""
        base = env.unwrapped
        student = base.student
        if not callable(getattr(student, "sample_answers", None)):
            raise InvalidConfig(
                f"Expects a student with sample_answers() as SPaR's actor; {type(student).__name__} has none."
            )
        self.env = base
        self.judge = self._make("judge", self.judge_choice, base.task)
        self.refiner = self._make("refiner", self.refiner_choice, base.task)

    def _make(self, what: str, choice: Any, task: Any) -> Any:
        if not isinstance(choice, str):
            return choice
        if choice == "llm":
            return LLMJudge(self.client, seed=self.seed) if what == "judge" else LLMRefiner(self.client)
        for method in ("check", "critique", "repair"):
            if not callable(getattr(task, method, None)):
                raise InvalidConfig(
                    f"Expects a task with check(), critique() and repair() for a programmatic {what} (the "
                    f"'ifeval-like' task has them); task {task.name!r} has no {method}(). Use {what}='llm'."
                )
        return ProgrammaticJudge(task) if what == "judge" else ProgrammaticRefiner(task)

    # -- one step ----------------------------------------------------------------------------------------------
    def act(self, observation: Mapping[str, Any], info: Mapping[str, Any]) -> PreferencePlan:
        if self.env is None:
            raise InvalidConfig(
                "Expects the SPaR teacher to be attached to its environment: call teacher.attach(env) first "
                "(envgym.run_episode and envgym spar do this)."
            )
        step, budget = int(self.env.step_index), int(info["budget_next"])
        prompts = self.draw_prompts(step)
        done = self._records_before(step)
        records = [row for row in done if row["step"] == step]
        kept = [row for row in done if row["step"] < step]
        self._write(kept + records)
        if len(records) < len(prompts):
            # Every prompt is sampled, also on resume: one seed drives the whole batch, so a prompt's samples
            # depend on which prompts are sampled with it.
            samples = self.env.student.sample_answers(
                [prompt.question for prompt in prompts],
                self.samples,
                temperature=self.temperature,
                seed=self._seed(step, 0),
            )
            for j in range(len(records), len(prompts)):
                records.append(self.build_record(step, j, prompts[j].question, prompts[j].skill, samples[j]))
                self._append(records[-1])
        pairs = [PreferencePair.from_dict(pair) for row in records for pair in row["pairs"]]
        # More pairs than the step's budget: a seeded subset, so no prompt order is favoured.
        if len(pairs) > budget:
            keep = np.random.default_rng(self._seed(step, 1)).choice(len(pairs), size=budget, replace=False)
            pairs = [pairs[i] for i in sorted(keep.tolist())]
        return PreferencePlan(tuple(pairs))

    def draw_prompts(self, step: int) -> list[Any]:
        """The step's training prompts: ``prompts`` of them, skills in turn, from the environment's training pool."""
        skills = [skill.name for skill in self.env.task.skills]
        rng = np.random.default_rng(self._seed(step, 2))
        per_skill = math.ceil(self.prompts / len(skills))
        drawn = [self.env.pool.sample(skill, per_skill, rng) for skill in skills]
        return [examples[i] for i in range(per_skill) for examples in drawn if i < len(examples)][: self.prompts]

    def build_record(self, step: int, index: int, prompt: str, skill: str, responses: Sequence[str]) -> dict[str, Any]:
        """Judge ``responses`` to ``prompt`` and make its pairs (tree or independent); JSON-able."""
        seed = self._seed(step, 3, index)
        judgements: list[Judgement] = [self.judge.judge(prompt, response) for response in responses]
        gate = self.search_config.end_gate
        trees: list[Tree] = []
        pairs: list[PreferencePair] = []
        if self.pairs == "tree":
            roots: list[int] = []
            seen: set[str] = set()
            for k, (response, judgement) in enumerate(zip(responses, judgements, strict=True)):
                if judgement.value <= gate and response not in seen:  # a failing sample, each distinct failure once
                    seen.add(response)
                    roots.append(k)
            if self.roots == "one" and roots:
                roots = [roots[int(np.random.default_rng(self._seed(step, 4, index)).integers(len(roots)))]]
            for k in roots:
                tree = search(prompt, responses[k], self.judge, self.refiner, self.search_config, seed=seed + k)
                trees.append(tree)
                refined = tree.refined_pair()
                if refined is not None:
                    meta = {"step": step, "prompt_index": index, "depth": tree.solution_node.depth}
                    pairs.append(PreferencePair(prompt, refined[0], refined[1], skill, meta))
        else:
            ranked = sorted(range(len(responses)), key=lambda k: (judgements[k].value, judgements[k].score or 0.0, -k))
            best, worst = ranked[-1], ranked[0]
            if judgements[best].value > gate and judgements[worst].value <= gate:
                meta = {"step": step, "prompt_index": index}
                pairs.append(PreferencePair(prompt, responses[best], responses[worst], skill, meta))
        return {
            "step": step,
            "prompt_index": index,
            "question": prompt,
            "skill": skill,
            "samples": list(responses),
            "judgements": [judgement.to_dict() for judgement in judgements],
            "trees": [tree.to_dict() for tree in trees],
            "pairs": [pair.to_dict() for pair in pairs],
        }

    def _seed(self, *parts: int) -> int:
        return int(np.random.SeedSequence([self.seed, *parts]).generate_state(1)[0]) % 2**31

    # -- files -------------------------------------------------------------------------------------------------
    def _records_before(self, step: int) -> list[dict[str, Any]]:
        """The records of earlier steps and of this step's finished prompts (a killed run's last line may be cut)."""
        if self.out_dir is None or not (self.out_dir / TREES_FILE).is_file():
            return []
        rows = []
        for line in (self.out_dir / TREES_FILE).read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                break  # the line a killed run was writing: that prompt is built again
            if row.get("step", step + 1) > step:
                break
            rows.append(row)
        return rows

    def _append(self, record: dict[str, Any]) -> None:
        """One finished prompt: its record, then its pairs and refinements. A kill in between is repaired by the
        next act()'s :meth:`_write`, which rebuilds the derived files from the records."""
        if self.out_dir is None:
            return
        for name, rows in ((TREES_FILE, [record]), *self._derived([record])):
            with open(self.out_dir / name, "a") as f:
                f.write("".join(json.dumps(row) + "\n" for row in rows))

    def _write(self, records: list[dict[str, Any]]) -> None:
        if self.out_dir is None:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for name, rows in ((TREES_FILE, records), *self._derived(records)):
            write_text_atomic(self.out_dir / name, "".join(json.dumps(row) + "\n" for row in rows))

    @staticmethod
    def _derived(records: list[dict[str, Any]]) -> tuple[tuple[str, list[dict[str, Any]]], ...]:
        """``pairs.jsonl`` and ``refiner_data.jsonl`` rows of ``records``."""
        pairs = [pair for row in records for pair in row["pairs"]]
        refinements = [step for row in records for tree in row["trees"] for step in refiner_steps(tree)]
        return (PAIRS_FILE, pairs), (REFINER_FILE, refinements)

    def state_dict(self) -> dict[str, Any]:
        """The settings its pair files depend on (it keeps no other state: every choice derives from the seed)."""
        return {
            "pairs": self.pairs,
            "roots": self.roots,
            "prompts": self.prompts,
            "samples": self.samples,
            "temperature": self.temperature,
            "search": self.search_config.to_dict(),
            "seed": self.seed,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Resume: refuse settings other than the run's, whose half-built pair files would not match."""
        differing = sorted(key for key, value in self.state_dict().items() if state.get(key, value) != value)
        if differing:
            raise InvalidConfig(
                f"Expects the SPaR settings of the run being resumed; these differ: "
                f"{', '.join(f'{key}={state[key]!r} (given {self.state_dict()[key]!r})' for key in differing)}. "
                "Resume with the run's settings, or start a new run with another --out."
            )


def refiner_steps(tree: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Refiner-training rows of a solved tree (a :meth:`Tree.to_dict`): each refinement on the path from the root
    to the solution, with the judge's critique of the response it refined."""
    parsed = Tree.from_dict(tree)
    if parsed.solution is None or parsed.solution == 0:
        return []
    path = parsed.path(parsed.solution)
    return [
        {
            "instruction": parsed.prompt,
            "response": parent.response,
            "critique": parent.judgement.critique,
            "refined": child.response,
            "refined_value": child.value,
        }
        for parent, child in itertools.pairwise(path)
    ]
