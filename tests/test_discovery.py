"""Skill discovery against a scripted OpenAI-compatible server: label, cluster, map; checkpoints and resume."""

from __future__ import annotations

import json
import re

import networkx as nx
import pytest
from scripted_llm_server import ScriptedLLMServer, last_prompt

from skills.llm import LLMClient
from skills.llm.discovery import OTHER, SkillDiscovery, discover_skills, run_discovery

QUESTIONS = ["12+35=", "47+38=", "91-17=", "60-5=", "6*7=", "8*9=", "3<5?", "10<2?", "BROKEN 1", "BROKEN 2"]


def scripted_llm(request: dict) -> str | tuple[int, str]:
    """A deterministic "LLM": labels by operator, clusters additions and subtractions together and leaves
    multiplication out of every category, maps a left-out question by keyword; garbage for BROKEN questions."""
    prompt = last_prompt(request)
    if prompt.startswith("Name the single"):
        question = re.search(r"Problem: (.*)", prompt).group(1)
        if question.startswith("BROKEN"):
            return '{"skill": '  # cut off: invalid
        skill = {"+": "Two-digit Addition", "-": "subtraction", "*": "times tables", "<": "comparing"}
        name = next((v for k, v in skill.items() if k in question), "other_arithmetic")
        return json.dumps({"skill": name, "description": f"questions like {question}"})
    if prompt.startswith("Group these skills"):
        return json.dumps(
            {
                "categories": [
                    {
                        "name": "Arithmetic",
                        "description": "sums and differences",
                        "skills": ["two_digit_addition", "subtraction"],
                    },
                    {"name": "Order", "description": "comparisons", "skills": ["comparing", "not_a_label"]},
                ]
            }
        )
    if prompt.startswith("Which category"):
        question = re.search(r"Problem: (.*)", prompt).group(1)
        return json.dumps({"category": "arithmetic" if "*" in question else "nonsense"})
    return 500, "unexpected prompt"


def _discover(server, out, **kwargs):
    client = LLMClient(base_url=server.base_url, model="scripted", max_retries=0, structured_output="json_object")
    return discover_skills(QUESTIONS, client, out, progress=False, **kwargs), client


def test_discovery_builds_a_connected_taxonomy_and_maps_every_question(tmp_path):
    with ScriptedLLMServer(scripted_llm) as server:
        found, client = _discover(server, tmp_path)
    graph = found.taxonomy
    assert nx.is_tree(graph) and nx.is_weakly_connected(graph)
    assert set(graph.successors("root")) == {"arithmetic", "order", OTHER}
    assert set(found.question_skills) == set(QUESTIONS)  # nothing lost
    assert found.question_skills["47+38="] == ["arithmetic", "two_digit_addition"]
    # Multiplication was left out by the clustering; its questions were asked about and mapped.
    assert found.question_skills["6*7="] == ["arithmetic", "times_tables"]
    # The broken questions: invalid twice (labelled unlabeled), then an invalid category twice: "other".
    assert found.question_skills["BROKEN 1"] == [OTHER, "unlabeled"]
    assert graph.nodes["arithmetic"]["count"] == 6 and graph.nodes["root"]["count"] == len(QUESTIONS)
    assert client.usage.invalid_replies == 2 * 2 + 2 * 2  # 2 label tries + 2 mapping rounds per broken question
    assert found.skill_map()["60-5="] == "arithmetic"
    loaded = SkillDiscovery.load(tmp_path)
    assert loaded.question_skills == found.question_skills and nx.utils.graphs_equal(loaded.taxonomy, graph)


def test_same_seed_same_files(tmp_path):
    with ScriptedLLMServer(scripted_llm) as server:
        _discover(server, tmp_path / "a")
        _discover(server, tmp_path / "b")
    for name in ("labels.jsonl", "categories.json", "mapping.json", "taxonomy.json", "question_skills.json"):
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "b" / name).read_text()


def test_a_crash_loses_nothing_and_the_rerun_asks_only_what_is_missing(tmp_path):
    budget = {"left": 4}

    def dying(request):
        if budget["left"] <= 0:
            return 503, "server gone"
        budget["left"] -= 1
        return scripted_llm(request)

    with ScriptedLLMServer(dying) as server, pytest.raises(Exception, match="503"):
        _discover(server, tmp_path)
    labelled = (tmp_path / "labels.jsonl").read_text().splitlines()
    assert len(labelled) == 4  # the four questions answered before the crash were written
    # A kill mid-line leaves half a line: it is ignored and that question asked again.
    with (tmp_path / "labels.jsonl").open("a") as f:
        f.write('{"question": "91-17=", "sk')

    with ScriptedLLMServer(scripted_llm) as server:
        found, _ = _discover(server, tmp_path)
        label_requests = [r for r in server.requests if last_prompt(r).startswith("Name the single")]
    asked = {re.search(r"Problem: (.*)", last_prompt(r)).group(1) for r in label_requests}
    assert asked == set(QUESTIONS[4:])  # never the four already labelled
    assert set(found.question_skills) == set(QUESTIONS)


def test_a_finished_stage_is_not_redone(tmp_path):
    with ScriptedLLMServer(scripted_llm) as server:
        _discover(server, tmp_path)
        first = len(server.requests)
        _discover(server, tmp_path)
    assert len(server.requests) == first  # every stage was on disk


def test_run_discovery_uses_training_questions_only(tmp_path):
    from skills.arithmetic import ArithmeticTask
    from skills.splits import is_reserved

    with ScriptedLLMServer(scripted_llm) as server:
        found = run_discovery(
            "arithmetic", tmp_path, {"base_url": server.base_url, "structured_output": "json_object"}, n_questions=24
        )
    task = ArithmeticTask()
    assert len(found.question_skills) == 24
    assert not any(is_reserved(task, question, 0.3) for question in found.question_skills)
    assert (tmp_path / "llm_cache").is_dir()


def test_no_questions_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="at least one question"):
        discover_skills([" "], LLMClient(base_url="http://127.0.0.1:9/v1"), tmp_path)


def test_envgym_discover_skills_command(tmp_path, capsys):
    from envgym.cli import main

    with ScriptedLLMServer(scripted_llm) as server:
        flags = ["--llm-base-url", server.base_url, "--llm-structured-output", "json_object"]
        code = main(["discover-skills", "--task", "arithmetic", "--out", str(tmp_path), "--n-questions", "16", *flags])
    printed = capsys.readouterr().out
    assert code == 0 and "16 questions" in printed and "arithmetic" in printed
    assert len(json.loads((tmp_path / "question_skills.json").read_text())) == 16
