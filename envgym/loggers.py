"""Per-step metrics to experiment trackers: TensorBoard event files and Weights & Biases, through the libraries' own
writers (``torch.utils.tensorboard.SummaryWriter``, ``wandb``), never a hand-written format.

``envgym run --log tensorboard`` (or ``--log tensorboard,wandb``; ``run_episode(..., log=[...])``) logs, after every
step: the reward, each skill's validation accuracy and their mean, the train loss, the examples used and spent,
and the seconds of each phase. TensorBoard files go to ``<run dir>/tensorboard`` (``tensorboard --logdir runs``);
W&B runs in offline mode unless ``WANDB_MODE`` says otherwise, into ``<run dir>/wandb`` (``wandb sync`` uploads it).
A resumed run continues the same curves: TensorBoard drops events from steps the checkpoint did not keep.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from skills.errors import InvalidConfig, unknown_name_error

TENSORBOARD_DIR = "tensorboard"
WANDB_DIR = "wandb"


class StepLogger(Protocol):
    """Receives each step's ``steps.jsonl`` row."""

    def log_step(self, step: int, row: Mapping[str, Any]) -> None: ...

    def close(self) -> None: ...


def scalars(row: Mapping[str, Any]) -> dict[str, float]:
    """The numbers of a ``steps.jsonl`` row worth a curve, by tracker tag."""
    values: dict[str, float] = {"reward": row["reward"], "examples/used": row["examples_used"]}
    values["examples/spent"] = row["budget_spent"]
    accuracy = row["val_accuracy"]
    values["val_accuracy/mean"] = sum(accuracy.values()) / len(accuracy)
    values.update({f"val_accuracy/{skill}": value for skill, value in accuracy.items()})
    if row.get("train_loss") is not None:
        values["train/loss"] = row["train_loss"]
    for phase in ("generate_seconds", "train_seconds", "eval_seconds"):
        if phase in row:
            values[f"seconds/{phase.removesuffix('_seconds')}"] = row[phase]
    return {tag: float(value) for tag, value in values.items()}


class TensorBoardLogger:
    """Scalars to ``<run dir>/tensorboard`` with ``torch.utils.tensorboard.SummaryWriter``."""

    def __init__(self, out_dir: str | Path, *, first_step: int = 1) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise InvalidConfig("--log tensorboard needs the tensorboard package: pip install tensorboard.") from None
        # purge_step: events at or after it (from steps a crash lost before their checkpoint) are discarded.
        self.writer = SummaryWriter(log_dir=str(Path(out_dir) / TENSORBOARD_DIR), purge_step=first_step)

    def log_step(self, step: int, row: Mapping[str, Any]) -> None:
        for tag, value in scalars(row).items():
            self.writer.add_scalar(tag, value, global_step=step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class WandbLogger:
    """Scalars to a Weights & Biases run in ``<run dir>/wandb`` (offline unless ``WANDB_MODE`` is set)."""

    def __init__(self, out_dir: str | Path, *, config: Mapping[str, Any], name: str, resume: bool) -> None:
        try:
            import wandb
        except ImportError:
            raise InvalidConfig("--log wandb needs the wandb package: pip install wandb.") from None
        directory = Path(out_dir) / WANDB_DIR
        directory.mkdir(parents=True, exist_ok=True)
        run_id_file = directory / "envgym_run_id"
        run_id = run_id_file.read_text().strip() if resume and run_id_file.is_file() else secrets.token_hex(8)
        run_id_file.write_text(run_id)
        self.run = wandb.init(
            project="envgym",
            name=name,
            id=run_id,
            resume="allow",
            dir=str(directory),
            config=dict(config),
            mode=os.environ.get("WANDB_MODE", "offline"),
        )

    def log_step(self, step: int, row: Mapping[str, Any]) -> None:
        self.run.log(scalars(row), step=step)

    def close(self) -> None:
        self.run.finish()


LOGGERS = ("tensorboard", "wandb")


def make_loggers(
    names: Sequence[str], out_dir: str | Path, *, config: Mapping[str, Any], name: str, first_step: int
) -> list[StepLogger]:
    """The step loggers ``names`` (``tensorboard``, ``wandb``) for a run in ``out_dir``."""
    loggers: list[StepLogger] = []
    for logger in names:
        if logger == "tensorboard":
            loggers.append(TensorBoardLogger(out_dir, first_step=first_step))
        elif logger == "wandb":
            loggers.append(WandbLogger(out_dir, config=config, name=name, resume=first_step > 1))
        else:
            raise unknown_name_error("logger", logger, LOGGERS)
    return loggers
