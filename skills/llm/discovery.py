"""Skill discovery: the metacognitive procedure DataEnvGym (Khan et al. 2024) and STAT (Kaur et al. 2024) use to
find the skills of a task from its questions, with an LLM.

1. **Label.** The LLM names the skill each training question needs (a short snake_case name and a description).
   An invalid reply is asked once more with another seed; a second failure labels the question ``unlabeled``.
2. **Cluster.** The distinct labels are grouped into at most ``max_categories`` categories (in batches of
   ``LABELS_PER_REQUEST`` labels; categories of the same name are merged, and beyond ``max_categories`` the
   smallest are dissolved).
3. **Map.** Every question goes to its label's category. A question whose label no category took (or that has
   none) is asked about directly ("which of these categories?"), up to ``max_remap_rounds`` times with new seeds;
   what is still unmapped goes to an explicit ``other`` category, so no question is lost.

The result is a networkx taxonomy ``root -> category -> category/skill`` and a question -> ``[category, skill]``
map; a task takes it as its skills (``MathWordTask(skill_map=...)``).

Every stage is a checkpoint under ``out_dir``: ``labels.jsonl`` grows one flushed line per question (a line cut by
a kill is ignored and asked again), ``categories.json`` and ``mapping.json`` are written atomically. Run again with
the same ``out_dir`` and finished work is not redone: a crash loses at most the request in flight. The client's
cache (``out_dir/llm_cache`` from :func:`run_discovery`) replays replies exactly.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import networkx as nx
import numpy as np
from pydantic import BaseModel, Field, create_model
from tqdm.auto import tqdm

from skills.errors import InvalidConfig
from skills.llm.client import LLMClient, bounded_text
from skills.llm.client_config import LLMClientConfig
from skills.llm.templates import render
from skills.storage import write_text_atomic
from skills.task import slug

UNLABELED = "unlabeled"
OTHER = "other"
ROOT = "root"
LABELS_PER_REQUEST = 40
LABELS_FILE, CATEGORIES_FILE, MAPPING_FILE = "labels.jsonl", "categories.json", "mapping.json"
TAXONOMY_FILE, QUESTION_SKILLS_FILE = "taxonomy.json", "question_skills.json"

Name = bounded_text(80)
Description = bounded_text(300)


class SkillLabel(BaseModel):
    skill: Name
    description: Description


class Category(BaseModel):
    name: Name
    description: Description
    skills: list[Name] = Field(max_length=LABELS_PER_REQUEST)


class Categories(BaseModel):
    categories: list[Category] = Field(min_length=1, max_length=16)


@dataclass
class SkillDiscovery:
    """What skill discovery found: ``taxonomy`` (``root -> category -> "category/skill"``, nodes with ``kind``,
    ``description`` and ``count``) and ``question_skills`` (question -> ``[category, skill]``)."""

    taxonomy: nx.DiGraph
    question_skills: dict[str, list[str]]

    def skill_map(self) -> dict[str, str]:
        """Question -> category: the skills a task takes (``MathWordTask(skill_map=...)``)."""
        return {question: pair[0] for question, pair in self.question_skills.items()}

    def save(self, out_dir: str | Path) -> None:
        out = Path(out_dir)
        _write_json(out / TAXONOMY_FILE, nx.node_link_data(self.taxonomy, edges="edges"))
        _write_json(out / QUESTION_SKILLS_FILE, self.question_skills)

    @classmethod
    def load(cls, out_dir: str | Path) -> SkillDiscovery:
        out = Path(out_dir)
        try:
            graph = nx.node_link_graph(json.loads((out / TAXONOMY_FILE).read_text()), edges="edges")
            question_skills = json.loads((out / QUESTION_SKILLS_FILE).read_text())
        except (OSError, ValueError, KeyError) as err:
            raise InvalidConfig(
                f"Expects a skill discovery in {str(out)!r} ({TAXONOMY_FILE}, {QUESTION_SKILLS_FILE}); {err}."
            ) from None
        return cls(graph, question_skills)


def discover_skills(
    questions: Sequence[str],
    client: LLMClient,
    out_dir: str | Path,
    *,
    max_categories: int = 8,
    seed: int = 0,
    max_remap_rounds: int = 2,
    progress: bool = True,
) -> SkillDiscovery:
    """Label, cluster and map ``questions`` (see the module docstring); resumes from ``out_dir``."""
    if max_categories < 1 or max_remap_rounds < 0:
        raise InvalidConfig(
            f"Expects max_categories >= 1 and max_remap_rounds >= 0; actual {max_categories}, {max_remap_rounds}."
        )
    questions = list(dict.fromkeys(q.strip() for q in questions if q.strip()))
    if not questions:
        raise InvalidConfig("Expects at least one question to discover skills from; actual none.")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    labels = _label(questions, client, out, seed, progress)
    categories = _cluster(labels, client, out, max_categories, seed)
    mapping = _map(questions, labels, categories, client, out, seed, max_remap_rounds, progress)
    discovery = _result(questions, labels, categories, mapping)
    discovery.save(out)
    return discovery


# -- stage 1: label ------------------------------------------------------------------------------------------
def _label(questions: list[str], client: LLMClient, out: Path, seed: int, progress: bool) -> dict[str, dict[str, str]]:
    path = out / LABELS_FILE
    labels: dict[str, dict[str, str]] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
                labels[row["question"]] = {"skill": row["skill"], "description": row["description"]}
            except (ValueError, KeyError, TypeError):
                continue  # a line cut by a kill: that question is asked again
    todo = [q for q in questions if q not in labels]
    # Rewrite the file whole (dropping a cut line) before appending to it.
    write_text_atomic(path, "".join(json.dumps({"question": q, **labels[q]}) + "\n" for q in questions if q in labels))
    position = {question: index for index, question in enumerate(questions)}
    with path.open("a") as f:
        for question in tqdm(todo, desc="labelling questions", disable=not progress):
            label = None
            for attempt in range(2):
                prompt = render(
                    "discovery_label.jinja",
                    question=question,
                    example_skill="two_digit_addition",
                    example_description="adding two numbers below 100",
                )
                reply = client.structured(prompt, SkillLabel, seed=_seed(seed, 1, position[question], attempt))
                name = UNLABELED if reply.value is None else slug(reply.value.skill, UNLABELED)
                if name != UNLABELED:
                    label = {"skill": name, "description": reply.value.description.strip()}
                    break
            label = label or {"skill": UNLABELED, "description": "no valid label from the LLM"}
            labels[question] = label
            f.write(json.dumps({"question": question, **label}) + "\n")
            f.flush()
    return labels


# -- stage 2: cluster ----------------------------------------------------------------------------------------
def _cluster(
    labels: Mapping[str, Mapping[str, str]], client: LLMClient, out: Path, max_categories: int, seed: int
) -> dict[str, dict[str, Any]]:
    path = out / CATEGORIES_FILE
    if path.is_file():
        return json.loads(path.read_text())
    described: dict[str, str] = {}
    counts: Counter[str] = Counter()
    for label in labels.values():
        if label["skill"] != UNLABELED:
            described.setdefault(label["skill"], label["description"])
            counts[label["skill"]] += 1
    names = sorted(described)
    categories: dict[str, dict[str, Any]] = {}
    for batch, start in enumerate(range(0, len(names), LABELS_PER_REQUEST)):
        chunk = names[start : start + LABELS_PER_REQUEST]
        prompt = render(
            "discovery_cluster.jinja",
            skills=[{"name": n, "description": described[n]} for n in chunk],
            max_categories=max_categories,
        )
        reply = client.structured(prompt, Categories, seed=_seed(seed, 2, batch), max_tokens=max(512, 40 * len(chunk)))
        for category in [] if reply.value is None else reply.value.categories:
            name = slug(category.name, UNLABELED)
            if name in (UNLABELED, OTHER):
                continue
            entry = categories.setdefault(name, {"description": category.description.strip(), "skills": []})
            for skill in category.skills:
                skill = slug(skill, UNLABELED)
                if (
                    skill in described
                    and skill not in entry["skills"]
                    and not any(skill in other["skills"] for other in categories.values())
                ):
                    entry["skills"].append(skill)
    categories = {name: entry for name, entry in categories.items() if entry["skills"]}
    # Too many categories: dissolve the smallest (by questions); their questions are re-mapped in stage 3.
    size = {name: sum(counts[s] for s in entry["skills"]) for name, entry in categories.items()}
    kept = sorted(categories, key=lambda name: (-size[name], name))[:max_categories]
    categories = {name: categories[name] for name in sorted(kept)}
    _write_json(path, categories)
    return categories


# -- stage 3: map --------------------------------------------------------------------------------------------
def _map(
    questions: list[str],
    labels: Mapping[str, Mapping[str, str]],
    categories: Mapping[str, Mapping[str, Any]],
    client: LLMClient,
    out: Path,
    seed: int,
    rounds: int,
    progress: bool,
) -> dict[str, str]:
    path = out / MAPPING_FILE
    mapping: dict[str, str] = json.loads(path.read_text()) if path.is_file() else {}
    owner = {skill: name for name, entry in categories.items() for skill in entry["skills"]}
    for question in questions:
        if question not in mapping and labels[question]["skill"] in owner:
            mapping[question] = owner[labels[question]["skill"]]
    _write_json(path, mapping)
    todo = [q for q in questions if q not in mapping]
    position = {question: index for index, question in enumerate(questions)}
    if todo and categories:
        choice = create_model("CategoryChoice", category=(Literal[tuple(categories)], ...))  # type: ignore[valid-type]
        listed = [{"name": n, "description": e["description"]} for n, e in categories.items()]
        for question in tqdm(todo, desc="mapping unlabelled questions", disable=not progress):
            for attempt in range(rounds):
                prompt = render("discovery_assign.jinja", question=question, categories=listed)
                reply = client.structured(prompt, choice, seed=_seed(seed, 3, position[question], attempt))
                if reply.value is not None:
                    mapping[question] = reply.value.category
                    break
            _write_json(path, mapping)  # per question: a crash re-asks only what is left
    for question in questions:
        mapping.setdefault(question, OTHER)
    _write_json(path, mapping)
    return mapping


def _result(
    questions: list[str],
    labels: Mapping[str, Mapping[str, str]],
    categories: Mapping[str, Mapping[str, Any]],
    mapping: Mapping[str, str],
) -> SkillDiscovery:
    graph = nx.DiGraph()
    graph.add_node(ROOT, kind="root", count=len(questions))
    question_skills: dict[str, list[str]] = {}
    for question in questions:
        category, skill = mapping[question], labels[question]["skill"]
        if not graph.has_node(category):
            description = categories.get(category, {}).get("description", "questions no category took")
            graph.add_node(category, kind="category", description=description, count=0)
            graph.add_edge(ROOT, category)
        node = f"{category}/{skill}"
        if not graph.has_node(node):
            graph.add_node(node, kind="skill", description=labels[question]["description"], count=0)
            graph.add_edge(category, node)
        graph.nodes[category]["count"] += 1
        graph.nodes[node]["count"] += 1
        question_skills[question] = [category, skill]
    return SkillDiscovery(graph, question_skills)


def run_discovery(
    task_spec: str,
    out_dir: str | Path,
    client_config: LLMClientConfig | Mapping[str, Any],
    *,
    n_questions: int = 200,
    seed: int = 0,
    max_categories: int = 8,
    heldout_fraction: float = 0.3,
    progress: bool = True,
) -> SkillDiscovery:
    """Discover the skills of a task (``envgym discover-skills``) from ``n_questions`` of its *training*
    questions: held-out (validation/test) ones are never shown to the LLM. Replies are cached in
    ``out_dir/llm_cache``."""
    from skills.registry import make_task
    from skills.splits import is_reserved
    from skills.task import skill_names

    task = make_task(task_spec)
    rng = np.random.default_rng([seed, 17])
    names = skill_names(task)
    questions: dict[str, str] = {}
    for _ in range(100):
        for skill in names:
            for example in task.generate(skill, max(1, n_questions // len(names)), rng):
                if not is_reserved(task, example.question, heldout_fraction):
                    questions.setdefault(task.heldout_key(example.question), example.question)
        if len(questions) >= n_questions:
            break
    client = LLMClient(client_config)
    client.use_cache_dir(Path(out_dir) / "llm_cache")
    return discover_skills(
        list(questions.values())[:n_questions],
        client,
        out_dir,
        max_categories=max_categories,
        seed=seed,
        progress=progress,
    )


def _seed(*parts: int) -> int:
    return int(np.random.SeedSequence(list(parts)).generate_state(1)[0])


def _write_json(path: Path, value: Any) -> None:
    write_text_atomic(path, json.dumps(value, indent=1, sort_keys=True) + "\n")
