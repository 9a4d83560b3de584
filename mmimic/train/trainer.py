"""The training loop: rollouts from the imitation environment, PPO updates, validation, checkpoints.

Per iteration the rollout runs entirely on the device; statistics are accumulated in device
tensors and read to the host once, when the iteration is logged. Under `torchrun` each rank owns
its worlds and seed, gradients and normaliser statistics are all-reduced, rank 0 logs and saves.
"""

from __future__ import annotations

import functools
import math
import os
import signal
import time
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.distributed as dist
from rich.console import Console

from mmimic.checkpoint import (
    check_compatible,
    load_checkpoint,
    nonfinite_weights,
    restore_actor_critic,
    save_checkpoint,
    weight_tensors,
)
from mmimic.cli import UsageError
from mmimic.device import device_memory, resolve_device
from mmimic.embodiment import Embodiment, load_embodiment
from mmimic.env import ImitationEnv
from mmimic.motion import MotionLibrary
from mmimic.ppo import PPO, ActorCritic, ReturnNormalizer, RolloutStorage
from mmimic.rollout import Step, rollout
from mmimic.train.clip_stats import ClipStats
from mmimic.train.config import DERIVED_KEYS, ConfigError, TrainConfig, check_config
from mmimic.train.logger import RunLogger
from mmimic.train.sampling import FailureWeightedSampler


@dataclass
class RunPaths:
    """The run directory: resolved config, TensorBoard events, metrics.jsonl, checkpoints/."""

    root: Path

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    def checkpoint(self, iteration: int) -> Path:
        return self.checkpoints / f"checkpoint_{iteration:06d}.pt"

    def saved_checkpoints(self) -> list[Path]:
        """The run's checkpoints, oldest first."""
        return sorted(self.checkpoints.glob("checkpoint_*.pt"))

    def latest_checkpoint(self) -> Path | None:
        found = self.saved_checkpoints()
        return found[-1] if found else None


class TrainingDiverged(RuntimeError):
    """Training produced non-finite weights, losses or too many non-finite actions and stopped."""


class EpisodeStats:
    """Sums over a rollout, kept on the device: rewards per term, finished episodes, early terminations,
    and with `clips` the per-clip sums that `summary` reports per motion category."""

    def __init__(self, device: torch.device, clips: ClipStats | None = None) -> None:
        self.device = device
        self.sums: dict[str, torch.Tensor] = {}
        self.clips = clips

    def add(self, key: str, value: torch.Tensor) -> None:
        self.sums[key] = self.sums.get(key, torch.zeros((), device=self.device)) + value

    def record_step(self, step: Step) -> None:
        """Add one control step of a rollout."""
        reward, done, info = step.reward, step.done, step.info
        if self.clips is not None:
            self.clips.record_step(step.clip, reward, done, info)
        self.add("reward/total", reward.mean())
        for name, term in info["reward_terms"].items():
            self.add(f"reward/{name}", term.mean())
        finished = done.float()
        self.add("episodes", finished.sum())
        self.add("episode_return_sum", (info["episode_return"] * finished).sum())
        self.add("episode_length_sum", (info["episode_length"].float() * finished).sum())
        self.add("early_terminations", (info["terminated"] & done).float().sum())
        self.add("nan_actions", info["nan_actions"].float().sum())

    def summary(self, steps: int) -> dict[str, float]:
        """Read everything to the host in one transfer."""
        keys = list(self.sums)
        parts = [torch.stack([self.sums[k] for k in keys])] if keys else []
        if self.clips is not None:
            parts.append(self.clips.grouped().flatten())
        values = torch.cat(parts).tolist() if parts else []
        raw = dict(zip(keys, values[: len(keys)]))
        self.sums.clear()
        episodes = raw.pop("episodes", 0.0)
        result = {k: v / steps for k, v in raw.items() if k.startswith("reward/")}
        nan = float("nan")
        result["episode/count"] = episodes
        result["episode/return"] = raw.get("episode_return_sum", 0.0) / episodes if episodes else nan
        result["episode/length"] = raw.get("episode_length_sum", 0.0) / episodes if episodes else nan
        result["episode/early_termination_rate"] = raw.get("early_terminations", 0.0) / episodes if episodes else nan
        result["errors/nan_actions"] = raw.get("nan_actions", 0.0)
        if "nonfinite_weights" in raw:
            result["errors/nonfinite_weights"] = raw["nonfinite_weights"]
        if self.clips is not None:
            result.update(self.clips.describe(values[len(keys):]))
        return result


def limit_cpu_threads(device: torch.device) -> None:
    """One torch thread on a CPU device unless OMP_NUM_THREADS says otherwise.

    Warp runs its CPU kernels on the calling thread; torch's idle OpenMP workers spin between
    calls and take the cores from it. Measured on the 2-core machine (bimanual, 8 worlds, cpu
    preset): 165 training steps/s with one thread against 29 with two (docs/benchmarks.md).
    """
    if device.type == "cpu" and "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(1)


def distributed_rank() -> tuple[int, int]:
    """(rank, world size), initialising torch.distributed when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    return (dist.get_rank(), world) if world > 1 else (0, 1)


class Trainer:
    """One training run: environment, actor-critic, PPO, logging and checkpoints in a run directory."""

    def __init__(
        self,
        config: TrainConfig,
        run_dir: Path,
        device: str,
        *,
        console: Console | None = None,
        init_checkpoint: dict | None = None,
        resume: bool = False,
        reset_std: float | None = None,
    ) -> None:
        self.config = config
        # The device first: under torchrun a bare "cuda" is this rank's GPU, set before NCCL starts.
        self.device = torch.device(resolve_device(device))
        self.rank, self.world_size = distributed_rank()
        self.is_main = self.rank == 0
        self.console = console or Console()
        self.paths = RunPaths(run_dir)
        limit_cpu_threads(self.device)
        if self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.set_float32_matmul_precision("high")
        run = config.run
        torch.manual_seed(run.seed + self.rank)

        check_config(config)  # a configuration built in Python, or a resumed checkpoint's, meets the same ranges
        batch = run.num_envs * run.num_steps
        if batch % config.ppo.num_minibatches:
            raise ConfigError(f"ppo.num_minibatches={config.ppo.num_minibatches} does not divide the rollout batch "
                              f"run.num_envs x run.num_steps = {run.num_envs} x {run.num_steps} = {batch}")
        self.embodiment: Embodiment = load_embodiment(config.embodiment)
        motions = [Path(p) for p in config.motions]
        categories = config.categories or None
        self.motions = MotionLibrary(self.embodiment, motions, self.device, split="train", categories=categories)
        self.validation_motions = self._validation_library(motions, categories)
        # Failure-weighted clip sampling (mmimic.train.sampling); one clip is drawn alone either way.
        self.sampler = FailureWeightedSampler(config.sampling, self.motions.clip_weight, self.motions.clip_names) \
            if config.sampling.failure_weighted and self.motions.num_clips > 1 else None
        self.clip_stats = ClipStats(self.motions, None if self.sampler is None else self.sampler.probabilities)
        # Each rank draws its own episode starts.
        seed = run.seed if config.env.seed is None else config.env.seed
        self.env_config = replace(config.env, seed=seed + self.rank).resolve(self.embodiment)
        self.env = ImitationEnv(self.embodiment, self.motions, run.num_envs, str(self.device), self.env_config)
        self.actor_critic = ActorCritic(
            self.env.num_obs, self.env.num_actions, config.network.actor_hidden, config.network.critic_hidden,
            config.network.init_std, residual=config.network.residual,
        ).to(self.device)
        self.ppo = PPO(self.actor_critic, config.ppo, self.device, num_updates=run.num_iterations(self.world_size))
        self.reward_normalizer = ReturnNormalizer(run.num_envs, gamma=config.ppo.gamma).to(self.device)
        if self.world_size > 1:
            self.actor_critic.obs_normalizer.enable_all_reduce()
            self.reward_normalizer.enable_all_reduce()
        self.storage = RolloutStorage(run.num_steps, run.num_envs, self.env.num_obs, self.env.num_actions, self.device)
        self.iteration = 0
        self.env_steps = 0
        if init_checkpoint is not None:
            self._load(init_checkpoint, resume=resume)
        if reset_std is not None:
            with torch.no_grad():
                self.actor_critic.log_std.fill_(math.log(reset_std))
        if self.world_size > 1:
            # Each rank initialised its networks from its own seed: start every rank from rank 0's weights
            # (and normaliser), so that the averaged gradients keep them identical.
            for tensor in self.actor_critic.state_dict().values():
                dist.broadcast(tensor, src=0)
        self._stop_requested = False  # a Ctrl-C seen by this rank (set by the signal handler only)
        self._stop_agreed_by_all = False

    def _validation_library(self, motions: list[Path], categories: list[str] | None) -> MotionLibrary:
        try:
            return MotionLibrary(self.embodiment, motions, self.device, split="test", categories=categories)
        except ValueError:
            return self.motions  # no held-out clips in the manifests: validate on the training clips

    def _load(self, checkpoint: dict, resume: bool) -> None:
        check_compatible(checkpoint, obs_layout=self.env.obs_layout, embodiment_name=self.embodiment.name,
                         model_hash=self.embodiment.model_hash)
        restore_actor_critic(checkpoint, self.actor_critic)
        if resume:
            self.ppo.optimizer.load_state_dict(checkpoint["optimizer"])
            self.iteration = int(checkpoint["iteration"])
            self.env_steps = int(checkpoint["env_steps"])
            if checkpoint.get("reward_normalizer") is not None:
                self.reward_normalizer.load_state_dict(checkpoint["reward_normalizer"])
            sampler_state = checkpoint.get("extra", {}).get("clip_sampler")
            if self.sampler is not None and sampler_state is not None:
                self.sampler.load_state_dict(sampler_state)
                self.env.set_clip_weights(self.sampler.probabilities)

    # ------------------------------------------------------------------ the loop

    def train(self) -> Path | None:
        """Run to `config.run.num_iterations`; Ctrl-C stops after the current iteration with a checkpoint."""
        run = self.config.run
        iterations = run.num_iterations(self.world_size)
        previous = signal.signal(signal.SIGINT, self._request_stop)
        last_saved: Path | None = None
        stats = EpisodeStats(self.device, self.clip_stats)
        obs = self.env.reset()
        if self.ppo.compiled and self.is_main and self.iteration < iterations:
            self.console.print("ppo.compile: the first iteration compiles the PPO update with torch.compile "
                               "(minutes on a CPU, less on a GPU); later iterations reuse it")
        try:
            with RunLogger(self.paths.root, iterations, self.console, enabled=self.is_main) as logger:
                while self.iteration < iterations and not self._stop_agreed():
                    started = time.perf_counter()
                    obs = self._rollout(obs, stats)
                    update = self._update(obs)
                    self._count_nonfinite(stats)
                    steps = run.num_steps * run.num_envs * self.world_size
                    self.env_steps += steps
                    self._update_sampler()
                    metrics = stats.summary(run.num_steps)
                    metrics.update({f"ppo/{k}": v for k, v in update.items()})
                    metrics.update(self._system_metrics(steps, time.perf_counter() - started))
                    problems = self._health(metrics)
                    if problems:  # before any save: the newest checkpoint stays the last good one
                        logger.log(self.iteration, self.env_steps, metrics)
                        raise TrainingDiverged(self._diverged_message(problems))
                    self.iteration += 1
                    if self.iteration % run.validation_interval == 0 or self.iteration == iterations:
                        if self.is_main:  # only rank 0 logs and saves; the other ranks go on to the next rollout
                            metrics.update(self.validate())
                        last_saved = self.save()
                    logger.log(self.iteration - 1, self.env_steps, metrics)
                if self._stop_agreed_by_all:
                    last_saved = self.save()
                    if self.is_main:
                        self.console.print(f"stopped by Ctrl-C after iteration {self.iteration}; saved {last_saved}")
        finally:
            signal.signal(signal.SIGINT, previous)
        return last_saved

    def _request_stop(self, signum: int, frame: object) -> None:
        if self._stop_requested:
            raise KeyboardInterrupt
        self._stop_requested = True
        if self.is_main:
            self.console.print("Ctrl-C: finishing this iteration, saving a checkpoint, then stopping (again to abort)")

    def _stop_agreed(self) -> bool:
        """Whether to stop before the next iteration: a Ctrl-C seen by any rank stops every rank at the
        same iteration (one scalar all-reduce per iteration under torchrun). The handler's flag is
        never overwritten here: a Ctrl-C that lands while this rank waits in the all-reduce counts
        in the next iteration's instead of being lost."""
        agreed = self._stop_requested
        if self.world_size > 1:
            flag = torch.tensor(float(agreed), device=self.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            agreed = bool(flag.item())
        self._stop_agreed_by_all = agreed
        return agreed

    def _rollout(self, obs: torch.Tensor, stats: EpisodeStats) -> torch.Tensor:
        def record(step: Step) -> None:
            _, log_prob, value, _ = step.output
            scaled = self.reward_normalizer(step.reward, step.done) if self.config.run.normalize_reward else step.reward
            self.storage.add(step.obs, step.action, log_prob, value, scaled, step.done, step.info["terminated"])
            stats.record_step(step)

        act = functools.partial(self.actor_critic.act, update_normalizer=True)
        return rollout(self.env, obs, self.config.run.num_steps, act, record)

    def _count_nonfinite(self, stats: EpisodeStats) -> None:
        """Add the number of non-finite network weights and normaliser statistics to the iteration's device
        statistics (read with them, no extra host read); under torchrun the action counts of all ranks."""
        tensors = weight_tensors(self.actor_critic).values()
        stats.add("nonfinite_weights", torch.stack([(~torch.isfinite(t)).sum() for t in tensors]).sum().float())
        if self.world_size > 1 and "nan_actions" in stats.sums:
            dist.all_reduce(stats.sums["nan_actions"])

    def _health(self, metrics: dict[str, float]) -> list[str]:
        """Why this iteration went bad (empty when it did not); warns of skipped minibatches and NaN actions."""
        run, ppo = self.config.run, self.config.ppo
        problems = []
        if metrics.get("errors/nonfinite_weights", 0.0) > 0:
            bad = nonfinite_weights(self.actor_critic)  # the run stops here: naming them costs nothing
            names = ", ".join(bad[:4]) + (f" and {len(bad) - 4} more" if len(bad) > 4 else "")
            problems.append(f"{metrics['errors/nonfinite_weights']:.0f} non-finite network weights ({names})")
        losses = [k for k in ("ppo/loss/total", "ppo/loss/actor", "ppo/loss/value") if not math.isfinite(metrics.get(k, 0.0))]
        if losses:
            problems.append(f"non-finite {', '.join(losses)}")
        minibatches = ppo.num_minibatches * ppo.update_epochs
        skipped = metrics.get("ppo/skipped", 0.0)
        if skipped >= minibatches:
            problems.append(f"all {minibatches} minibatches of the update had a non-finite loss or gradient")
        fraction = metrics["errors/nan_actions"] / (run.num_steps * run.num_envs * self.world_size)
        if fraction > run.max_nonfinite_actions:
            problems.append(f"{fraction:.1%} of the rollout's actions were non-finite "
                            f"(run.max_nonfinite_actions = {run.max_nonfinite_actions:g})")
        if not problems and self.is_main and (skipped or metrics["errors/nan_actions"]):
            self.console.print(f"[yellow]iteration {self.iteration + 1}: {skipped:.0f} minibatch(es) skipped (non-finite "
                               f"loss or gradient), {metrics['errors/nan_actions']:.0f} non-finite action(s)[/yellow]")
        return problems

    def _diverged_message(self, problems: list[str]) -> str:
        latest = self.paths.latest_checkpoint() if self.is_main else None
        kept = f"the newest checkpoint, {latest}, is the last good one" if latest else "no checkpoint was written"
        return (f"iteration {self.iteration + 1} diverged: {'; '.join(problems)}; nothing saved from it, {kept}. "
                "Try a lower ppo.lr or ppo.max_grad_norm")

    def _update(self, last_obs: torch.Tensor) -> dict[str, float]:
        self.ppo.compute_returns(self.storage, last_obs)
        result = self.ppo.update(self.storage, self.iteration)
        self.storage.clear()
        return result

    def _update_sampler(self) -> None:
        """Sum the rollout's per-clip counts over the ranks under torchrun and, with failure-weighted
        sampling, update the clip probabilities and the environment's reset CDF, on the device."""
        counts = self.clip_stats
        if self.world_size > 1:
            dist.all_reduce(counts.totals)
        if self.sampler is not None:
            self.env.set_clip_weights(self.sampler.update(counts.episodes, counts.early_terminations))

    def _system_metrics(self, steps: int, seconds: float) -> dict[str, float]:
        metrics = {"sps": steps / seconds, "time/iteration_s": seconds}
        overflow = self.env.sim.overflow_report()
        metrics["errors/overflow_steps"] = overflow["overflow_steps"]
        if self.device.type == "cuda":  # torch's and Warp's (mujoco_warp's arrays and scratch) memory
            used = device_memory(str(self.device))
            metrics["memory/gpu_peak_gb"] = (used["torch_peak"] + used["warp_peak"]) / 2**30
            metrics.update({f"memory/{key}_gb": value / 2**30 for key, value in used.items()})
        return metrics

    # ------------------------------------------------------------------ validation and checkpoints

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Stochastic rollouts on the held-out clips with the validation termination thresholds."""
        run = self.config.run
        if not hasattr(self, "validation_env"):
            env_config = self.env_config.for_validation()
            self.validation_env = ImitationEnv(self.embodiment, self.validation_motions, run.validation_envs,
                                               str(self.device), env_config)
        env = self.validation_env
        stats = EpisodeStats(self.device, ClipStats(self.validation_motions))
        rollout(env, env.reset(), run.validation_steps, self.actor_critic.policy(sample=True), stats.record_step,
                keep_obs=False)
        return {f"validation/{k}": v for k, v in stats.summary(run.validation_steps).items()}

    def save(self) -> Path | None:
        """Checkpoint the run (rank 0), keeping the newest `keep_checkpoints`."""
        if not self.is_main:
            return None
        path = self.paths.checkpoint(self.iteration)
        save_checkpoint(
            path,
            actor_critic=self.actor_critic,
            optimizer=self.ppo.optimizer,
            iteration=self.iteration,
            env_steps=self.env_steps,
            config=self.config.to_dict(),
            obs_layout=list(self.env.obs_layout),
            embodiment_name=self.embodiment.name,
            model_hash=self.embodiment.model_hash,
            reward_normalizer=self.reward_normalizer,
            extra={} if self.sampler is None else {"clip_sampler": self.sampler.state_dict()},
        )
        for old in self.paths.saved_checkpoints()[: -self.config.run.keep_checkpoints]:
            old.unlink()
        return path


def checkpoint_bytes(trainer: Trainer) -> int:
    """About the size of one checkpoint of `trainer`: the networks' state and the optimiser's two moments."""
    state = sum(t.numel() * t.element_size() for t in trainer.actor_critic.state_dict().values())
    return 3 * state + 2**20


def check_new_run_dir(run_dir: Path, flag: str) -> None:
    """UsageError when `run_dir` already holds a run (config.toml, metrics.jsonl or checkpoints/): a new
    run never mixes its metrics and checkpoints with an old one's."""
    found = [name for name in ("config.toml", "metrics.jsonl", "checkpoints") if (Path(run_dir) / name).exists()]
    if found:
        raise UsageError(f"{flag} {run_dir} already holds a run ({', '.join(found)}); continue it with --resume "
                         f"{run_dir}, or choose a new {flag}")


def check_resume(checkpoint: dict, config: TrainConfig, run_dir: Path, where: str, world_size: int = 1) -> None:
    """UsageError when the checkpoint is already at the run's last iteration (`RunConfig.num_iterations` on
    `world_size` ranks), or when the run directory's config.toml records another configuration than the
    checkpoint (the run's length, `run.iterations` and `run.timesteps`, may differ)."""
    done, end = int(checkpoint["iteration"]), config.run.num_iterations(world_size)
    if end <= done:
        raise UsageError(f"{where}: the checkpoint is at iteration {done} and the run ends at iteration "
                         f"{end}; give --iterations above {done} to continue it")
    saved_path = Path(run_dir) / "config.toml"
    if not saved_path.is_file():
        return
    try:
        saved = tomllib.loads(saved_path.read_text())
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"{where}: the run's {saved_path} is not readable TOML ({exc})") from None
    differences = _differences(_plain(saved), _plain(checkpoint["config"]))
    differences = [d for d in differences if d not in ("run.iterations", "run.timesteps", *DERIVED_KEYS)]
    if differences:
        shown = ", ".join(f"{key} ({_lookup(saved, key)!r} in the run, {_lookup(checkpoint['config'], key)!r} "
                          "in the checkpoint)" for key in differences[:3])
        raise UsageError(f"{where}: the checkpoint does not belong to the run in {run_dir}: {shown}"
                         f"{' and more' if len(differences) > 3 else ''}; resume from the run's own checkpoints")


def _plain(value: object) -> object:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _differences(a: object, b: object, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested dicts (embodiment first)."""
    if not (isinstance(a, dict) and isinstance(b, dict)):
        return [] if a == b else [prefix.rstrip(".") or "(whole configuration)"]
    keys = sorted(set(a) | set(b), key=lambda k: (k != "embodiment", k))
    return [d for k in keys for d in _differences(a.get(k), b.get(k), f"{prefix}{k}.")]


def _lookup(data: dict, dotted: str) -> object:
    for part in dotted.split("."):
        data = data.get(part) if isinstance(data, dict) else None
    return data


def load_for_resume(path: Path) -> tuple[dict, Path]:
    """A checkpoint file, or a run directory (its newest checkpoint), and the run directory it belongs to."""
    path = Path(path)
    if path.is_dir():
        latest = RunPaths(path).latest_checkpoint()
        if latest is None:
            raise UsageError(f"--resume {path}: no checkpoints/checkpoint_*.pt in this run directory")
        path = latest
    checkpoint = load_checkpoint(path, map_location="cpu")
    return checkpoint, path.parent.parent

