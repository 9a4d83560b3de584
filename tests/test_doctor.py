"""`runners/doctor.py` on this machine, and the driver check of the runners with a GPU that torch sees
and Warp does not (faked: the usual cause is a driver older than Warp's CUDA 13 toolkit)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import warp as wp
from runner_scripts import load_runner

from mmimic.device import cuda_view

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def warp_blind(fake_gpus, monkeypatch):
    """torch sees one H100, Warp none, the driver supports CUDA 12.4."""
    fake_gpus(torch_gpus=1, warp_gpus=0, driver=(12, 4))
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda i: SimpleNamespace(name="NVIDIA H100 80GB HBM3", total_memory=80 * 2**30))


def test_doctor_reports_this_cpu_machine():
    view = cuda_view()
    if view.torch_gpus or view.warp_gpus:
        pytest.skip("this machine has a GPU")
    done = subprocess.run([sys.executable, str(REPO / "runners/doctor.py"), "--no-render"], capture_output=True,
                          text=True, timeout=300, check=False, env={**os.environ, "COLUMNS": "250"})  # no wrapping
    out = done.stdout
    for package in ("torch", "warp-lang", "mujoco", "mujoco-warp", "musclemimic-models"):
        assert package in out
    assert wp.__version__ in out and torch.__version__ in out
    toolkit = wp.get_cuda_toolkit_version()
    assert f"toolkit {toolkit[0]}.{toolkit[1]}; 0 GPU(s) usable" in out
    assert "0 GPU(s) visible" in out and "none: training runs the 'cpu' preset" in out
    assert "Warp kernel cache" in out and f" {wp.config.kernel_cache_dir}: " in out
    assert "Traceback" not in done.stderr
    assert done.returncode == (1 if "problem:" in out else 0)


def test_doctor_names_the_driver_problem(warp_blind):
    doctor = load_runner("doctor")
    report = doctor.diagnose(render=False)
    rows = dict(report.rows)
    assert rows["torch CUDA"] == "built with 12.8; 1 GPU(s) visible"
    assert rows["  torch cuda:0"] == "NVIDIA H100 80GB HBM3, 80.0 GiB"
    assert rows["CUDA driver"] == "supports CUDA 12.4"
    problems = [p for p, _ in report.problems]
    fixes = [f for _, f in report.problems]
    assert any("torch sees a GPU that Warp cannot use" in p for p in problems)
    assert any("R580" in f and "+cu12" in f and "driver supports 12.4" in f for f in fixes)


def test_train_refuses_the_cpu_when_warp_cannot_use_the_gpu(warp_blind, tmp_path, capsys):
    train = load_runner("train")
    code = train.main(["--embodiment", "bimanual", "--iterations", "1", "--out", str(tmp_path / "run")])
    out = capsys.readouterr()
    assert code == 2
    text = " ".join((out.out + out.err).split())  # rich wraps long lines
    assert f"torch {torch.__version__} (CUDA 12.8) sees 1 GPU(s) but Warp {wp.__version__}" in text
    assert "R580" in text and "+cu12" in text and "Traceback" not in text
    assert not (tmp_path / "run").exists()


def test_benchmark_refuses_the_cpu_when_warp_cannot_use_the_gpu(warp_blind, capsys):
    benchmark = load_runner("benchmark")
    with pytest.raises(SystemExit) as exit_info:
        benchmark.parse_args(["--embodiment", "bimanual"])
    assert exit_info.value.code == 2
    assert "cannot use them" in " ".join(capsys.readouterr().err.split())


def test_eval_refuses_the_cpu_when_warp_cannot_use_the_gpu(warp_blind, tmp_path, capsys):
    evaluate = load_runner("eval")
    code = evaluate.main(["--checkpoint", str(tmp_path / "never_read.pt")])
    assert code == 2
    out = capsys.readouterr()
    text = " ".join((out.out + out.err).split())
    assert "cannot use them" in text and "never_read.pt" not in text  # refused before the checkpoint is read
