"""Human-readable results of an episode: report.json, summary.md, accuracy.png and a console table."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from envgym.files import read_json
from skills.errors import DamagedCheckpoint, InvalidRunDirectory


def read_steps(out_dir: str | Path) -> list[dict[str, Any]]:
    path = Path(out_dir) / "steps.jsonl"
    if not path.is_file():
        return []
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except ValueError as err:
                raise DamagedCheckpoint(f"Run log {str(path)!r} line {number} is damaged ({err}).") from None
    return rows


def load_report(out_dir: str | Path) -> dict[str, Any]:
    path = Path(out_dir) / "report.json"
    if not path.exists():
        raise InvalidRunDirectory(
            f"Expects a finished run directory with report.json; {str(path)!r} does not exist. "
            f"Resume an unfinished run with: envgym run --resume {out_dir}"
        )
    report = read_json(
        path, "Run report", f" Rebuild it from the run's final checkpoint with: envgym run --resume {out_dir}"
    )
    if not isinstance(report, dict) or not {"env_id", "teacher", "seed", "test_accuracy"} <= set(report):
        raise DamagedCheckpoint(
            f"Run report {str(path)!r} is damaged (not an envgym report). "
            f"Rebuild it from the run's final checkpoint with: envgym run --resume {out_dir}"
        )
    return report


def plot_accuracy(out_dir: str | Path, report: dict[str, Any]) -> Path:
    """Per-skill validation accuracy by step (solid) and test accuracy before/after (markers)."""
    os.environ.setdefault("MPLCONFIGDIR", str(Path(out_dir) / ".matplotlib"))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = read_steps(out_dir)
    skills = list(report["test_accuracy"]["per_skill"])
    series = [report["val_accuracy_start"], *[s["val_accuracy"] for s in steps]]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    colors = plt.get_cmap("tab10")
    last = len(series) - 1
    for i, skill in enumerate(skills):
        ax.plot(range(len(series)), [row[skill] for row in series], marker="o", color=colors(i % 10), label=skill)
        test = report["test_accuracy"]["per_skill"][skill]
        ax.scatter([0, last], [test["before"], test["after"]], marker="x", color=colors(i % 10))
    ax.set_xlabel("step")
    ax.set_ylabel("accuracy (lines: validation, x: test)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"{report['env_id']} · teacher {report['teacher']} · seed {report['seed']}")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    path = Path(out_dir) / "accuracy.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def skill_table(report: dict[str, Any]) -> Table:
    test = report["test_accuracy"]
    table = Table(title=f"Test accuracy · teacher {report['teacher']} · {report['examples_used']} examples")
    for column in ("skill", "before", "after", "gain"):
        table.add_column(column, justify="left" if column == "skill" else "right")
    for skill, row in test["per_skill"].items():
        gain = row["after"] - row["before"]
        table.add_row(skill, f"{row['before']:.3f}", f"{row['after']:.3f}", f"{gain:+.3f}")
    table.add_row("mean", f"{test['before']:.3f}", f"{test['after']:.3f}", f"{test['after'] - test['before']:+.3f}")
    return table


def print_report(report: dict[str, Any], console: Console | None = None) -> None:
    (console or Console()).print(skill_table(report))


def write_summary(out_dir: str | Path, report: dict[str, Any]) -> Path:
    test = report["test_accuracy"]
    lines = [
        f"# {report['env_id']} · teacher `{report['teacher']}` · seed {report['seed']}",
        "",
        f"Examples used: {report['examples_used']} · wall time {report['wall_seconds']:.1f} s · "
        f"mean test accuracy {test['before']:.3f} → {test['after']:.3f} ({test['after'] - test['before']:+.3f})",
        "",
        "| skill | before | after | gain |",
        "|---|---:|---:|---:|",
    ]
    for skill, row in test["per_skill"].items():
        lines.append(f"| {skill} | {row['before']:.3f} | {row['after']:.3f} | {row['after'] - row['before']:+.3f} |")
    lines += [
        "",
        "Per-step log: `steps.jsonl`; training data: `data/step_<k>.jsonl`; plot: `accuracy.png`.",
        "",
    ]
    path = Path(out_dir) / "summary.md"
    path.write_text("\n".join(lines))
    return path
