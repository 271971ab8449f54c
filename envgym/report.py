"""Human-readable results of an episode: report.json, summary.md, accuracy.png and a console table."""

from __future__ import annotations

import json
import os
import sys
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


def pyplot(out_dir: str | Path) -> Any:
    """matplotlib's pyplot on the file-only Agg backend; on first import without ``MPLCONFIGDIR`` its cache goes
    inside ``out_dir``. The variable is set for that import only, so child processes and other code in the
    worker do not inherit it (matplotlib keeps the directory it read at import)."""
    if "matplotlib" not in sys.modules and "MPLCONFIGDIR" not in os.environ:
        os.environ["MPLCONFIGDIR"] = str(Path(out_dir) / ".matplotlib")
        try:
            return _agg_pyplot()
        finally:
            del os.environ["MPLCONFIGDIR"]
    return _agg_pyplot()


def _agg_pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # Read (and cached by matplotlib) now, while MPLCONFIGDIR is what pyplot() chose.
    matplotlib.get_configdir()
    matplotlib.get_cachedir()
    return plt


def plot_accuracy(out_dir: str | Path, report: dict[str, Any]) -> Path:
    """Per-skill validation accuracy by step (solid) and test accuracy before/after (markers)."""
    plt = pyplot(out_dir)
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


def plot_skill_tree(path: str | Path, tree: Any, title: str = "skill tree") -> Path:
    """Draw a ``root -> skill -> subskill`` tree: nodes coloured by validation accuracy, subskills sized by the
    training data generated for them, each labelled with its accuracy and data."""
    path = Path(path)
    plt = pyplot(path.parent)
    import networkx as nx

    skills = list(tree.successors("root"))
    leaves = [(skill, name) for skill in skills for name in tree.successors(skill)]
    width = max(len(leaves), len(skills), 1)
    position: dict[str, tuple[float, float]] = {"root": (width / 2, 2.0)}
    column = 0
    for skill in skills:
        children = list(tree.successors(skill))
        for child in children:
            position[child] = (column + 0.5, 0.0)
            column += 1
        if not children:
            column += 1
        position[skill] = (column - max(len(children), 1) / 2, 1.0)
    fig, ax = plt.subplots(figsize=(max(8.0, 0.9 * width), 5.5))
    cmap = plt.get_cmap("RdYlGn")
    nodes = [node for node in tree.nodes if node != "root"]
    data = [tree.nodes[node].get("data", 0) for node in nodes]
    biggest = max([*data, 1])
    sizes = [
        900 if tree.nodes[node]["kind"] == "skill" else 120 + 1400 * (count / biggest) ** 0.5
        for node, count in zip(nodes, data, strict=True)
    ]
    nx.draw_networkx_edges(tree, position, ax=ax, arrows=False, edge_color="#999999")
    nx.draw_networkx_nodes(tree, position, nodelist=["root"], node_color="#dddddd", node_size=600, ax=ax)
    drawn = nx.draw_networkx_nodes(
        tree,
        position,
        nodelist=nodes,
        node_color=[tree.nodes[node]["accuracy"] for node in nodes],
        cmap=cmap,
        vmin=0.0,
        vmax=1.0,
        node_size=sizes,
        ax=ax,
    )
    labels = {"root": tree.nodes["root"].get("task", "root")}
    for node in nodes:
        attrs = tree.nodes[node]
        if attrs["kind"] == "skill":  # the band parameter's name once, at the skill: leaves show only its range
            children = list(tree.successors(node))
            feature = children[0].split("/", 1)[-1].split("=")[0].replace("_", " ") if children else ""
            labels[node] = f"{node}\n{feature}\nacc {attrs['accuracy']:.2f}"
        else:
            labels[node] = f"{node.rsplit('=', 1)[-1]}\n{attrs['accuracy']:.2f}\nn={attrs['data']}"
    nx.draw_networkx_labels(tree, position, labels=labels, font_size=6, ax=ax)
    fig.colorbar(drawn, ax=ax, label="validation accuracy", shrink=0.7, fraction=0.03)
    ax.set_title(f"{title} (subskill size: training data generated)")
    ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
