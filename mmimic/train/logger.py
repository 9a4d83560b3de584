"""Run logging: TensorBoard scalars, `metrics.jsonl` (one JSON object per iteration) and a live console."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.table import Table
from torch.utils.tensorboard import SummaryWriter

CONSOLE_KEYS = (
    ("env steps/s", "sps", "{:,.0f}"),
    ("mean reward/step", "reward/total", "{:.4f}"),
    ("episode return", "episode/return", "{:.2f}"),
    ("episode length", "episode/length", "{:.1f}"),
    ("early termination", "episode/early_termination_rate", "{:.1%}"),
    ("value loss", "ppo/loss/value", "{:.4f}"),
    ("actor loss", "ppo/loss/actor", "{:.4f}"),
    ("policy std", "ppo/std_mean", "{:.3f}"),
)
CATEGORY_FORMAT = "length / early termination / reward per step"


class RunLogger:
    """Writes every iteration's metrics to TensorBoard and `metrics.jsonl`, and shows a live table."""

    def __init__(self, run_dir: Path, total_iterations: int, console: Console, enabled: bool = True) -> None:
        self.enabled = enabled
        self.total = total_iterations
        self.console = console
        self.started = time.perf_counter()
        self.first_iteration: int | None = None
        self.live: Live | None = None
        if enabled:
            self.writer = SummaryWriter(str(run_dir / "tensorboard"))
            self.jsonl = (run_dir / "metrics.jsonl").open("a")

    def __enter__(self) -> RunLogger:
        # A live table on a terminal; one line per iteration when the output goes to a file or pipe.
        if self.enabled and self.console.is_terminal:
            self.live = Live(Table(), console=self.console, refresh_per_second=2, transient=False)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            if self.live is not None:
                self.live.__exit__(*exc)
            self.writer.close()
            self.jsonl.close()

    def log(self, iteration: int, env_steps: int, metrics: dict[str, float]) -> None:
        if not self.enabled:
            return
        if self.first_iteration is None:
            self.first_iteration = iteration
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, env_steps)
        record = {"iteration": iteration, "env_steps": env_steps, **metrics}
        self.jsonl.write(json.dumps({k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                                     for k, v in record.items()}) + "\n")
        self.jsonl.flush()
        if self.live is not None:
            self.live.update(self._table(iteration, env_steps, metrics))
        else:
            shown = [f"{label} {fmt.format(metrics[key])}" for label, key, fmt in CONSOLE_KEYS
                     if metrics.get(key) is not None and math.isfinite(metrics[key])]
            self.console.print(f"iteration {iteration + 1}/{self.total}  " + "  ".join(shown), soft_wrap=True)
            categories = category_rows(metrics)
            if len(categories) > 1:
                self.console.print(f"  by category ({CATEGORY_FORMAT}): " + "  |  ".join(
                    f"{name} {value}" for name, value in categories), soft_wrap=True, highlight=False)

    def _table(self, iteration: int, env_steps: int, metrics: dict[str, float]) -> Table:
        done = iteration - (self.first_iteration or 0) + 1
        elapsed = time.perf_counter() - self.started
        remaining = elapsed / done * (self.total - iteration - 1)
        table = Table(title=f"iteration {iteration + 1}/{self.total}  ·  {env_steps:,} env steps  ·  "
                            f"ETA {time.strftime('%H:%M:%S', time.gmtime(max(remaining, 0)))}")
        table.add_column("metric")
        table.add_column("value", justify="right")
        for label, key, fmt in CONSOLE_KEYS:
            if key in metrics and metrics[key] is not None and math.isfinite(metrics[key]):
                table.add_row(label, fmt.format(metrics[key]))
        categories = category_rows(metrics)
        if len(categories) > 1:
            table.add_section()
            table.add_row("category: " + CATEGORY_FORMAT, "")
            for name, value in categories:
                table.add_row(name, value)
        return table


def category_rows(metrics: dict[str, float]) -> list[tuple[str, str]]:
    """(category, "length / early termination / reward") of every `category/<name>/...` metric, in order."""
    names = list(dict.fromkeys(k.split("/")[1] for k in metrics if k.startswith("category/")))

    def show(value: float | None, fmt: str) -> str:
        return "–" if value is None or not math.isfinite(value) else fmt.format(value)

    return [(name, " / ".join((show(metrics.get(f"category/{name}/episode_length"), "{:.1f}"),
                                show(metrics.get(f"category/{name}/early_termination_rate"), "{:.0%}"),
                                show(metrics.get(f"category/{name}/reward"), "{:.3f}"))))
            for name in names]
