"""``envgym lbt m1``: learning by teaching's M1 (answer selection by exam scores) as a resumable run.

Per teaching problem (``envgym/LbT-v0``'s validation questions, in the episode's seeded order): the teacher's greedy
solution and ``samples`` sampled ones; one exam; each solution's LbT score (the exam students' accuracy with it in
context, per student too); the answer each rule selects. ``m1.jsonl`` gets a row per problem as it finishes (a
resumed run skips those), ``report.json`` the accuracy of greedy, ``maj`` (self-consistency), ``max``, ``sum`` and
``avg`` on the teaching problems, with each rule also applied to each single student's scores (one student vs all).

Without ``--teacher-base-url`` the local Gemma-3-270M server (``envgym serve-teacher``) is started for the run and
is the teacher and the students' endpoint.

Example:
    >>> from envgym.lbt import run_m1
    >>> from envgym.lbt_config import LbTM1Config
    >>> report = run_m1(LbTM1Config(problems=4), "runs/lbt-m1")  # doctest: +SKIP
    >>> report["accuracy"]["greedy"], report["accuracy"]["max"]  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from agents.lbt import SELECTION_RULES, EndpointSolver, Solver, select_answer, worked_examples
from envgym.files import acquire_run_lock, dumps, read_json, write_text_atomic
from envgym.lbt_config import LbTM1Config
from envgym.lbt_env import LbTEnv
from envgym.runner import check_run_dir, refuse_existing_run
from skills.errors import InvalidConfig

ROWS_FILE = "m1.jsonl"
LLM_CACHE = "llm_cache"


@contextlib.contextmanager
def _endpoint(llm: Mapping[str, Any] | None) -> Iterator[dict[str, Any]]:
    """The teacher's endpoint settings: as given, or the local Gemma server started for the run."""
    if llm and llm.get("base_url"):
        yield dict(llm)
        return
    from envgym.serve import serve_teacher

    with serve_teacher(port=None, n_threads=1) as server:
        yield {**dict(llm or {}), "base_url": server.base_url}


def exam_students(config: LbTM1Config, student_llm: Mapping[str, Any]) -> list[Any]:
    """The exam students' specs: the student endpoint at each temperature, then the local students."""
    return [{**dict(student_llm), "temperature": t} for t in config.temperatures()] + config.local()


def run_m1(
    config: LbTM1Config,
    out_dir: str | Path,
    *,
    teacher_llm: Mapping[str, Any] | None = None,
    student_llm: Mapping[str, Any] | None = None,
    solver: Solver | None = None,
    students: list[Any] | None = None,
    resume: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Run (or continue) M1 in ``out_dir``; returns the report. ``solver``/``students`` replace the endpoint
    teacher and students (tests, or a user's own models)."""
    out = check_run_dir(out_dir, resume=resume)
    lock = acquire_run_lock(out)
    try:
        need_server = solver is None or (students is None and not (student_llm or {}).get("base_url"))
        with _endpoint(teacher_llm) if need_server else contextlib.nullcontext(dict(teacher_llm or {})) as llm:
            settings = {key: value for key, value in llm.items() if key != "base_url"}
            student_endpoint = {**llm, **dict(student_llm or {})} if student_llm else dict(llm)
            specs = students if students is not None else exam_students(config, student_endpoint)
            env = LbTEnv(task=config.task, students=specs, problems=config.problems, exam_size=config.exam_size)
            solver = solver or EndpointSolver(llm, temperature=config.temperature)
            for part in (solver, *env.students):
                use = getattr(part, "use_cache_dir", None)
                if callable(use):
                    use(out / LLM_CACHE)
            try:
                return _run(config, env, solver, out, settings, resume, progress)
            finally:
                env.close()
    finally:
        lock.release()


def _run(
    config: LbTM1Config,
    env: LbTEnv,
    solver: Solver,
    out: Path,
    settings: dict[str, Any],
    resume: bool,
    progress: bool,
) -> dict[str, Any]:
    run_config = {"method": "m1", "config": config.to_dict(), "students": [s.name for s in env.students], **settings}
    rows_path = out / ROWS_FILE
    if resume:
        saved = read_json(out / "config.json", "Run file")
        if saved != run_config:
            raise InvalidConfig(
                f"Expects the settings of the run in {out} to resume it; they differ. Give the same flags, or a new "
                "--out."
            )
        rows = _read_rows(rows_path)
    else:
        refuse_existing_run(out)
        write_text_atomic(out / "config.json", dumps(run_config, indent=2) + "\n")
        rows = []
    write_text_atomic(rows_path, "".join(dumps(row) + "\n" for row in rows))
    env.reset(seed=config.seed)
    problems = env.episode_problems
    start = time.perf_counter()
    for index in tqdm(range(len(rows), len(problems)), desc="LbT M1", disable=not progress):
        row = _problem_row(config, env, solver, problems[index], index)
        with open(rows_path, "a") as f:
            f.write(dumps(row) + "\n")
        rows.append(row)
    report = m1_report(rows, [s.name for s in env.students])
    report.update(config=run_config, wall_seconds_this_session=time.perf_counter() - start)
    write_text_atomic(out / "report.json", dumps(report, indent=2) + "\n")
    return report


def _read_rows(path: Path) -> list[dict[str, Any]]:
    rows = []
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            rows.append(json.loads(line))
        except ValueError:
            break  # a row cut by a crash: it and what follows are done again
    return rows


def _problem_row(config: LbTM1Config, env: LbTEnv, solver: Solver, problem: Any, index: int) -> dict[str, Any]:
    seed = int(np.random.SeedSequence([config.seed, index, 31]).generate_state(1)[0])
    rng = np.random.default_rng([seed, 37])
    shots = worked_examples(env.pool.sample(problem.skill, config.shots, rng))
    greedy = env.validate_action(solver.greedy(problem.question, shots))
    sampled = [env.validate_action(s) for s in solver.sample(problem.question, shots, config.samples, seed=seed)]
    exam = env.exam_for(problem, seed)
    results = [env.score(problem, solution, exam, seed) for solution in sampled]
    scores = [result.score for result in results]
    per_student = {name: [result.student_scores[name] for result in results] for name in results[0].scores}
    selected = {rule: select_answer(sampled, scores, rule) for rule in SELECTION_RULES}
    by_student = {
        name: {rule: select_answer(sampled, values, rule) for rule in SELECTION_RULES if rule != "maj"}
        for name, values in per_student.items()
    }

    def correct(answer: str) -> float:
        return float(env.task.score(problem, answer))

    return {
        "index": index,
        "problem": problem.question,
        "skill": problem.skill,
        "gold": problem.answer,
        "exam": [ex.question for ex in exam],
        "greedy": {**greedy.to_json(), "correct": correct(greedy.answer)},
        "samples": [
            {
                **solution.to_json(),
                "lbt_score": result.score,
                "student_scores": result.student_scores,
                "correct": correct(solution.answer),
            }
            for solution, result in zip(sampled, results, strict=True)
        ],
        "selected": {rule: {"answer": answer, "correct": correct(answer)} for rule, answer in selected.items()},
        "selected_by_student": {
            name: {rule: correct(answer) for rule, answer in rules.items()} for name, rules in by_student.items()
        },
    }


def m1_report(rows: list[dict[str, Any]], students: list[str]) -> dict[str, Any]:
    """Accuracy of greedy and of each rule over the problems, the mean LbT score of right and wrong solutions,
    and each rule on each single student's scores."""
    samples = [s for row in rows for s in row["samples"]]
    right = [s["lbt_score"] for s in samples if s["correct"] == 1.0]
    wrong = [s["lbt_score"] for s in samples if s["correct"] < 1.0]
    return {
        "method": "m1",
        "problems": len(rows),
        "accuracy": {
            "greedy": _mean([row["greedy"]["correct"] for row in rows]),
            **{rule: _mean([row["selected"][rule]["correct"] for row in rows]) for rule in SELECTION_RULES},
            "oracle": _mean([max(s["correct"] for s in row["samples"]) for row in rows]),
            "sample_mean": _mean([s["correct"] for s in samples]),
        },
        "accuracy_by_student": {
            name: {
                rule: _mean([row["selected_by_student"][name][rule] for row in rows])
                for rule in SELECTION_RULES
                if rule != "maj"
            }
            for name in students
        },
        "lbt_score": {
            "right_solutions": _mean(right),
            "wrong_solutions": _mean(wrong),
            "right_count": len(right),
            "wrong_count": len(wrong),
        },
    }


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None
