"""`runners/benchmark.py` runs on the CPU and reports every field for every environment count."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import warp as wp
from runner_scripts import load_runner

REPO = Path(__file__).resolve().parent.parent


def test_benchmark_writes_json_and_plot(tmp_path: Path) -> None:
    runner = load_runner("benchmark")
    out, png = tmp_path / "benchmark.json", tmp_path / "benchmark.png"
    assert runner.main(["--embodiment", "bimanual", "--envs", "1,2", "--steps", "2", "--iterations", "1", "--device", "cpu",
                        "--json", str(out), "--plot", str(png)]) == 0
    result = json.loads(out.read_text())
    assert [row["num_envs"] for row in result["rows"]] == [1, 2]
    for row in result["rows"]:
        for field in ("physics_steps_per_s", "physics_ms_per_step", "env_steps_per_s", "env_ms_per_step",
                      "env_over_physics", "train_steps_per_s", "train_over_physics", "peak_memory_mb"):
            assert row[field] > 0
        assert row["env_resets_per_step"] >= 0
        assert set(row["breakdown_ms_per_iteration"]) == {"physics", "kernels", "policy", "update", "other"}
        assert row["preset"] == "cpu"
    assert result["mujoco_c_single_thread"]["steps_per_s"] > 0
    assert {"date", "device", "versions", "command"} <= result.keys()
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--envs", "0"], "0 is not a positive environment count"),
        (["--envs", "4,-2"], "-2 is not a positive environment count"),
        (["--envs", "2.5"], "'2.5' is not an integer"),
        pytest.param(["--device", "cuda"], "Warp finds no CUDA GPU",
                     marks=pytest.mark.skipif(wp.is_cuda_available(), reason="this machine has a GPU")),
        (["--embodiment", "dog"], "unknown embodiment 'dog'"),
        (["--preset", "huge"], "--preset 'huge' is not one of"),
    ],
)
def test_benchmark_refuses_bad_arguments(args: list[str], message: str) -> None:
    done = subprocess.run([sys.executable, str(REPO / "runners/benchmark.py"), *args], capture_output=True, text=True,
                          cwd=REPO, timeout=120)
    assert done.returncode != 0
    assert message in " ".join((done.stderr + done.stdout).split())
