"""Two-process training with torch.distributed (gloo) on the CPU.

Each rank owns its worlds and episode seed; gradients and normaliser statistics are all-reduced,
so the ranks' networks stay identical; rank 0 alone logs and saves.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.multiprocessing as mp

from mmimic.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parent.parent
WORLD = 2
ITERATIONS = 2
TINY = ["network.actor_hidden=[32]", "network.critic_hidden=[32]", "run.num_envs=3", "run.num_steps=4",
        "ppo.num_minibatches=2", "run.validation_envs=2", "run.validation_steps=5",
        f"run.iterations={ITERATIONS}", "run.validation_interval=1"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(rank: int, port: int, tmp: str) -> None:
    """One rank: a Trainer under torch.distributed, its own run directory, its final state in a file."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(WORLD))
    torch.set_num_threads(1)
    import torch.distributed as dist

    from mmimic.train.config import resolve_config
    from mmimic.train.trainer import Trainer

    trainer = Trainer(resolve_config("bimanual", "cpu", overrides=TINY), Path(tmp) / f"run{rank}", "cpu")
    assert dist.is_initialized() and dist.get_backend() == "gloo" and trainer.rank == rank
    starts = (trainer.env.clip.clone(), trainer.env.clip_step.clone())  # the episode starts drawn at construction
    initial_actor = {k: v.clone() for k, v in trainer.actor_critic.actor.state_dict().items()}
    trainer.train()
    ac = trainer.actor_critic
    torch.save({"actor": ac.actor.state_dict(), "critic": ac.critic.state_dict(), "log_std": ac.log_std.detach(),
                "obs_normalizer": ac.obs_normalizer.state_dict(),
                "reward_normalizer": trainer.reward_normalizer.return_rms.state_dict(),
                "initial_actor": initial_actor, "clip": starts[0], "clip_step": starts[1],
                "iteration": trainer.iteration, "env_steps": trainer.env_steps},
               Path(tmp) / f"rank{rank}.pt")
    dist.destroy_process_group()


def test_two_gloo_ranks_keep_identical_weights(tmp_path: Path) -> None:
    mp.spawn(_rank_main, args=(free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD))

    # The updates moved the weights, and moved them identically on both ranks (bit for bit).
    assert any(not torch.equal(r0["actor"][k], r0["initial_actor"][k]) for k in r0["actor"])
    for part in ("actor", "critic", "obs_normalizer", "reward_normalizer"):
        assert r0[part].keys() == r1[part].keys()
        for key in r0[part]:
            assert torch.equal(r0[part][key], r1[part][key]), f"{part}.{key} differs between the ranks"
    assert torch.equal(r0["log_std"], r1["log_std"])
    # The normaliser merged both ranks' observations: 2 ranks x 3 worlds x 4 steps x 2 iterations.
    assert round(float(r0["obs_normalizer"]["count"])) == WORLD * 3 * 4 * ITERATIONS
    assert r0["iteration"] == r1["iteration"] == ITERATIONS
    assert r0["env_steps"] == r1["env_steps"] == WORLD * 3 * 4 * ITERATIONS

    # Each rank drew its own episode starts (environment seed + rank).
    assert not torch.equal(r0["clip_step"], r1["clip_step"])

    # Rank 0 alone wrote its run directory; rank 1 wrote nothing.
    run0 = tmp_path / "run0"
    assert not (tmp_path / "run1").exists()
    assert [c.name for c in sorted((run0 / "checkpoints").glob("*.pt"))] == \
        ["checkpoint_000001.pt", "checkpoint_000002.pt"]
    assert len((run0 / "metrics.jsonl").read_text().splitlines()) == ITERATIONS
    saved = load_checkpoint(run0 / "checkpoints/checkpoint_000002.pt")
    for key in r0["actor"]:
        assert torch.equal(saved["actor"][key], r0["actor"][key])


def test_torchrun_runner_writes_one_run_directory(tmp_path: Path) -> None:
    """`torchrun --nproc-per-node 2 runners/train.py ...` end to end: exit 0, one run directory
    written by rank 0, environment steps (and `--timesteps`) counted over both ranks, the process
    group shut down."""
    out = tmp_path / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(WORLD),
               "--master-addr", "127.0.0.1", "--master-port", str(free_port()),
               str(REPO / "runners/train.py"), "--embodiment", "bimanual", "--preset", "cpu", "--out", str(out),
               "--timesteps", str(WORLD * 3 * 4 * ITERATIONS)]
    for item in TINY:
        if not item.startswith("run.iterations="):
            command += ["--set", item]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == ["checkpoints", "config.toml", "metrics.jsonl", "tensorboard"]
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in records] == list(range(ITERATIONS))
    assert records[-1]["env_steps"] == WORLD * 3 * 4 * ITERATIONS
    checkpoint = load_checkpoint(out / f"checkpoints/checkpoint_{ITERATIONS:06d}.pt")
    assert checkpoint["env_steps"] == WORLD * 3 * 4 * ITERATIONS
    assert result.stdout.count("run directory") == 1  # printed by rank 0 only
    assert "destroy_process_group" not in result.stderr  # no warning about a process group left open


def _rank_until_stopped(rank: int, port: int, tmp: str) -> None:
    """One rank of a long run that a Ctrl-C (SIGINT to one rank only) stops."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(WORLD))
    import torch.distributed as dist

    from mmimic.train.config import resolve_config
    from mmimic.train.trainer import Trainer

    overrides = [o for o in TINY if not o.startswith(("run.iterations=", "run.validation_interval="))]
    config = resolve_config("bimanual", "cpu", overrides=[*overrides, "run.iterations=100000",
                                                          "run.validation_interval=100000"])
    trainer = Trainer(config, Path(tmp) / "run", "cpu")
    saved = trainer.train()
    (Path(tmp) / f"stopped{rank}.json").write_text(json.dumps({"iteration": trainer.iteration, "saved": str(saved)}))
    dist.destroy_process_group()


def test_ctrl_c_on_one_rank_stops_every_rank_at_the_same_iteration(tmp_path: Path) -> None:
    """Under torchrun a Ctrl-C may reach any rank first: all ranks agree to stop after the same
    iteration (no rank left waiting in a collective), and rank 0 saves that iteration."""
    context = mp.spawn(_rank_until_stopped, args=(free_port(), str(tmp_path)), nprocs=WORLD, join=False)
    metrics = tmp_path / "run/metrics.jsonl"
    deadline = time.time() + 120
    while (not metrics.is_file() or len(metrics.read_text().splitlines()) < 2) and time.time() < deadline:
        time.sleep(0.2)
    os.kill(context.processes[1].pid, signal.SIGINT)  # rank 1 only
    deadline = time.time() + 120
    while not context.join(timeout=1):
        assert time.time() < deadline, "the ranks did not stop"
    stopped = [json.loads((tmp_path / f"stopped{r}.json").read_text()) for r in range(WORLD)]
    assert stopped[0]["iteration"] == stopped[1]["iteration"] >= 2
    iteration = stopped[0]["iteration"]
    assert stopped[0]["saved"].endswith(f"checkpoint_{iteration:06d}.pt") and stopped[1]["saved"] == "None"
    assert load_checkpoint(stopped[0]["saved"])["iteration"] == iteration
