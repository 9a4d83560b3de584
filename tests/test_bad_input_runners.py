"""Every runner ends a bad flag, path or file in one sentence naming it, exit status 2, no traceback, before any
work starts (runners are called in-process: `main(argv)`); `--debug` shows the traceback instead."""

from __future__ import annotations

import contextlib
import os
import resource
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from runner_scripts import load_runner

import mmimic
from mmimic.checkpoint import CheckpointError, load_policy, save_checkpoint
from mmimic.ppo import ActorCritic
from mmimic.train.config import ConfigError, resolve_config

REPO = Path(__file__).resolve().parent.parent
CLIP = REPO / "motions/bimanual/opensim_walk.npz"
TINY = ["--set", "network.actor_hidden=[32]", "--set", "network.critic_hidden=[32]", "--set", "run.num_steps=4",
        "--set", "ppo.num_minibatches=2", "--num-envs", "2"]


def fake_checkpoint(path: Path, embodiment: str, iteration: int, nan: bool = False) -> Path:
    """A small but complete checkpoint whose configuration is the cpu preset of `embodiment`."""
    config = resolve_config(embodiment, "cpu", overrides=[f"run.iterations={iteration}"])
    actor_critic = ActorCritic(6, 2, [8], [8], 1.0)
    save_checkpoint(path, actor_critic=actor_critic, optimizer=None, iteration=iteration, env_steps=0,
                    config=config.to_dict(), obs_layout=[("obs", 6)], embodiment_name=embodiment, model_hash="0" * 16)
    if nan:  # written behind save_checkpoint's back, as a diverged run of an older version would have
        payload = torch.load(path, weights_only=True)
        payload["actor"] = {k: torch.full_like(v, float("nan")) for k, v in payload["actor"].items()}
        torch.save(payload, path)
    return path


@contextlib.contextmanager
def read_only_directory(path: Path) -> Iterator[Path]:
    """A directory nobody may write in: permission bits for a user, a read-only tmpfs for root."""
    path.mkdir()
    if os.geteuid() != 0:
        path.chmod(0o555)
        try:
            yield path
        finally:
            path.chmod(0o755)
        return
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(path)], capture_output=True)
    if mounted.returncode:
        pytest.skip("running as root without permission to mount a read-only tmpfs")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


def assert_one_sentence(capsys: pytest.CaptureFixture, *parts: str) -> str:
    captured = capsys.readouterr()
    text = " ".join((captured.out + captured.err).split())
    assert "Traceback" not in text and "error:" in text, text
    for part in parts:
        assert part in text, text
    return text


# ---------------------------------------------------------------------------- train


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--set", "ppo.num_minibatches=0"], "ppo.num_minibatches must be >= 1"),
        (["--set", "run.num_steps=0"], "run.num_steps must be >= 1"),
        (["--set", "network.actor_hidden=[0]"], "network.actor_hidden must be a non-empty list"),
        (["--set", "network.init_std=0"], "network.init_std must be > 0"),
        (["--set", "ppo.lr=nan"], "ppo.lr must be >= 0 and finite"),
        (["--set", "ppo.gamma=2.0"], "ppo.gamma must be in (0, 1]"),
        (["--set", "ppo.gama=0.9"], "did you mean 'gamma'?"),
    ],
)
def test_train_bad_values(tmp_path: Path, capsys: pytest.CaptureFixture, flags: list[str], message: str) -> None:
    out = tmp_path / "run"
    assert load_runner("train").main(["--embodiment", "bimanual", "--out", str(out), *TINY, *flags]) == 2
    assert_one_sentence(capsys, message)
    assert not out.exists()


def test_train_binary_config_and_debug_traceback(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    binary = tmp_path / "model.toml"
    binary.write_bytes(os.urandom(2048))
    argv = ["--embodiment", "bimanual", "--config", str(binary), "--out", str(tmp_path / "run")]
    assert load_runner("train").main(argv) == 2
    assert_one_sentence(capsys, f"--config {binary}: not a text file")
    with pytest.raises(ConfigError, match="not a text file"):
        load_runner("train").main([*argv, "--debug"])


def test_train_out_into_an_existing_run_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "old"
    (out / "checkpoints").mkdir(parents=True)
    (out / "metrics.jsonl").write_text('{"iteration": 0}\n')
    assert load_runner("train").main(["--embodiment", "bimanual", "--out", str(out), *TINY]) == 2
    assert_one_sentence(capsys, f"--out {out} already holds a run (metrics.jsonl, checkpoints)", f"--resume {out}")
    assert (out / "metrics.jsonl").read_text() == '{"iteration": 0}\n' and not (out / "config.toml").exists()


def test_train_out_paths_that_cannot_be_written(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert load_runner("train").main(["--embodiment", "bimanual", "--out", str(a_file), *TINY]) == 2
    assert_one_sentence(capsys, f"--out {a_file}: is a file, not a directory")
    assert load_runner("train").main(["--embodiment", "bimanual", "--out", str(a_file / "run"), *TINY]) == 2
    assert_one_sentence(capsys, f"{a_file} is a file, not a directory")
    with read_only_directory(tmp_path / "ro") as ro:
        assert load_runner("train").main(["--embodiment", "bimanual", "--out", str(ro / "run"), *TINY]) == 2
        assert_one_sentence(capsys, f"--out {ro / 'run'}: cannot write in {ro}", "choose a writable location")


def test_train_full_disk_is_found_before_training(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import mmimic.cli

    real = mmimic.cli.shutil.disk_usage

    def almost_full(path: object) -> object:
        return real(path)._replace(free=4096)

    monkeypatch.setattr(mmimic.cli.shutil, "disk_usage", almost_full)
    out = tmp_path / "run"
    assert load_runner("train").main(["--embodiment", "bimanual", "--out", str(out), "--iterations", "1", *TINY]) == 2
    assert_one_sentence(capsys, f"--out {out}: 0.0 MiB free on that file system", "free some space")
    assert not (out / "checkpoints").exists()


def test_resume_refuses_another_runs_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "bimanual-run"
    (run / "checkpoints").mkdir(parents=True)
    train = load_runner("train")
    resolve_config("bimanual", "cpu").to_toml(run / "config.toml")
    fake_checkpoint(run / "checkpoints/checkpoint_000001.pt", "fullbody", 1)
    before = (run / "config.toml").read_text()
    assert train.main(["--resume", str(run), "--iterations", "5"]) == 2
    assert_one_sentence(capsys, "does not belong to the run", "embodiment ('bimanual' in the run, 'fullbody' in the checkpoint)")
    assert (run / "config.toml").read_text() == before


def test_resume_at_or_past_the_last_iteration_says_so(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "run"
    fake_checkpoint(run / "checkpoints/checkpoint_000005.pt", "bimanual", 5)
    assert load_runner("train").main(["--resume", str(run)]) == 2
    assert_one_sentence(capsys, "the checkpoint is at iteration 5 and the run ends at iteration 5", "--iterations above 5")
    assert load_runner("train").main(["--resume", str(run), "--iterations", "3"]) == 2
    assert_one_sentence(capsys, "the checkpoint is at iteration 5 and the run ends at iteration 3")
    (tmp_path / "empty").mkdir()
    assert load_runner("train").main(["--resume", str(tmp_path / "empty")]) == 2
    assert_one_sentence(capsys, "no checkpoints/checkpoint_*.pt in this run directory")


@pytest.mark.parametrize("content", ["random", "zeros"])
def test_unreadable_checkpoints(tmp_path: Path, capsys: pytest.CaptureFixture, content: str) -> None:
    path = tmp_path / ("ckpt.pt" if content == "random" else "clip.npz")
    path.write_bytes(os.urandom(4096) if content == "random" else bytes(4096))
    assert load_runner("train").main(["--embodiment", "bimanual", "--finetune", str(path), "--out", str(tmp_path / "ft"), *TINY]) == 2
    text = assert_one_sentence(capsys, f"checkpoint {path}: not a torch checkpoint archive")
    assert "issue" not in text and "pickle" not in text
    assert load_runner("eval").main(["--checkpoint", str(path), "--motions", str(CLIP)]) == 2
    assert_one_sentence(capsys, f"checkpoint {path}: not a torch checkpoint archive")
    with pytest.raises(CheckpointError, match="not a torch checkpoint archive"):
        load_policy(path)


@pytest.mark.slow
def test_too_many_worlds_is_one_sentence(tmp_path: Path) -> None:
    """200 000 bimanual worlds on the CPU within an 8 GB address space: Warp's allocation fails."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (8 * 2**30, 8 * 2**30))

    result = subprocess.run(
        [sys.executable, str(REPO / "runners/train.py"), "--embodiment", "bimanual", "--device", "cpu",
         "--num-envs", "200000", "--iterations", "1", "--out", str(tmp_path / "run")],
        preexec_fn=limit, capture_output=True, text=True, timeout=600, env={**os.environ, "COLUMNS": "400"})
    text = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 2 and "Traceback" not in text, text[-3000:]
    assert "out of memory" in text and "--num-envs" in text, text[-3000:]


# ---------------------------------------------------------------------------- the other runners


def test_eval_play_benchmark_output_paths(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    checkpoint = tmp_path / "missing.pt"  # the output paths are checked first
    assert load_runner("eval").main(["--checkpoint", str(checkpoint), "--json", str(tmp_path)]) == 2
    assert_one_sentence(capsys, f"--json {tmp_path}: is a directory")
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert load_runner("eval").main(["--checkpoint", str(checkpoint), "--report", str(a_file)]) == 2
    assert_one_sentence(capsys, f"--report {a_file}: is a file, not a directory")
    assert load_runner("play").main(["--checkpoint", str(checkpoint), "--motion", str(CLIP), "--video", str(a_file / "v.mp4")]) == 2
    assert_one_sentence(capsys, f"{a_file} is a file, not a directory")
    with read_only_directory(tmp_path / "ro") as ro:
        assert load_runner("eval").main(["--checkpoint", str(checkpoint), "--json", str(ro / "m.json")]) == 2
        assert_one_sentence(capsys, f"--json {ro / 'm.json'}: cannot write in {ro}")
        assert load_runner("benchmark").main(["--embodiment", "bimanual", "--device", "cpu", "--json", str(ro / "p.json")]) == 2
        assert_one_sentence(capsys, f"--json {ro / 'p.json'}: cannot write in {ro}")


def test_eval_refuses_a_nan_policy(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = fake_checkpoint(tmp_path / "nan.pt", "bimanual", 1, nan=True)
    with pytest.raises(CheckpointError, match="non-finite weights \\(actor.*its policy outputs NaN"):
        load_policy(path)


def test_retarget_and_motions_output_paths(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert load_runner("retarget").main([str(tmp_path / "walk.bvh"), "--embodiment", "bimanual", "--out", str(a_file)]) == 2
    assert_one_sentence(capsys, f"--out {a_file}: is a file, not a directory")
    with read_only_directory(tmp_path / "ro") as ro:
        assert load_runner("motions").main(["derive", str(REPO / "motions/fullbody/opensim_walk.npz"), "--embodiment", "bimanual",
                                       "--out", str(ro / "arms.npz")]) == 2
        assert_one_sentence(capsys, f"--out {ro / 'arms.npz'}: cannot write in {ro}")
        assert load_runner("motions").main(["convert", str(REPO / "motions/sources/opensim_moco_walk/coordinates.mot"),
                                       "--out", str(ro / "walk.npz")]) == 2
        assert_one_sentence(capsys, f"--out {ro / 'walk.npz'}: cannot write in {ro}")


def test_derive_to_a_body_the_clip_does_not_fit(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "full.npz"
    assert load_runner("motions").main(["derive", str(CLIP), "--embodiment", "fullbody", "--out", str(out)]) == 1
    assert_one_sentence(capsys, f"{CLIP}: the derived clip does not fit embodiment 'fullbody'", "missing joint(s) root")
    assert not out.exists()


# ---------------------------------------------------------------------------- the Python API


def test_policy_module_checks_its_observations(tmp_path: Path) -> None:
    policy = load_policy(fake_checkpoint(tmp_path / "ok.pt", "bimanual", 1))
    assert policy(torch.zeros(3, 6)).shape == (3, 2)
    with pytest.raises(ValueError, match=r"float32 observations of shape \(\.\.\., 6\), got torch.float32 \(3, 5\)"):
        policy(torch.zeros(3, 5))
    with pytest.raises(ValueError, match=r"got torch.float64 \(3, 6\)"):
        policy(torch.zeros(3, 6, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"got torch.int64 \(3, 6\)"):
        policy(torch.zeros(3, 6, dtype=torch.int64))


def test_non_finite_weights_are_never_saved(tmp_path: Path) -> None:
    actor_critic = ActorCritic(6, 2, [8], [8], 1.0)
    with torch.no_grad():
        actor_critic.log_std[0] = float("inf")
    with pytest.raises(ValueError, match="refusing to write a checkpoint with non-finite weights \\(log_std\\)"):
        save_checkpoint(tmp_path / "bad.pt", actor_critic=actor_critic, optimizer=None, iteration=1, env_steps=0,
                        config={}, obs_layout=[("obs", 6)], embodiment_name="bimanual", model_hash="0" * 16)
    assert list(tmp_path.iterdir()) == []


def test_simulator_reset_refuses_a_nan_row(bimanual: mmimic.Embodiment) -> None:
    sim = mmimic.Simulator(bimanual, num_envs=2, device="cpu")
    qpos = torch.as_tensor(bimanual.initial_qpos(), dtype=torch.float32).repeat(2, 1)
    qpos[1, 3] = float("nan")
    before = sim.qpos.clone()
    with pytest.raises(ValueError, match=r"qpos has NaN or inf in the row\(s\) of world\(s\) \[1\]"):
        sim.reset(torch.ones(2, dtype=torch.bool), qpos)
    assert torch.equal(sim.qpos, before)
    sim.reset(torch.tensor([True, False]), qpos)  # the NaN row belongs to a world that is not reset


def test_run_main_summarises_what_a_user_can_fix_and_keeps_bugs_loud(capsys: pytest.CaptureFixture) -> None:
    from rich.console import Console

    from mmimic.cli import run_main

    console = Console()

    def raises(exc: BaseException):
        def body() -> int:
            raise exc
        return body

    assert run_main(raises(MemoryError("Unable to allocate 1.9 GiB")), console, memory_hint="fewer worlds (--num-envs)") == 2
    assert_one_sentence(capsys, "out of memory (Unable to allocate 1.9 GiB); fewer worlds (--num-envs)")
    assert run_main(raises(RuntimeError("Failed to allocate 3372800000 bytes on device 'cpu'")), console) == 2
    assert_one_sentence(capsys, "out of memory (Failed to allocate 3372800000 bytes")
    assert run_main(raises(OSError(28, "No space left on device", "/runs/a/metrics.jsonl")), console) == 2
    assert_one_sentence(capsys, "/runs/a/metrics.jsonl: no space left on device; free some space or write elsewhere")
    with pytest.raises(RuntimeError, match="a bug"):  # not the user's to fix: the traceback stays
        run_main(raises(RuntimeError("a bug")), console)
    with pytest.raises(OSError):
        run_main(raises(OSError(28, "No space left on device")), console, debug=True)
