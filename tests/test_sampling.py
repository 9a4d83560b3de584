"""Failure-weighted clip sampling, the category filter and the per-category training log.

Truths: the closed-form moving averages and mixture of `mmimic.train.sampling`'s docstring,
binomial spread of the environment's own draws, and a motion set built so that one clip always
fails (its reference jumps between two poses every frame) and one never does (a still pose).
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from rich.console import Console
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import mmimic
from mmimic.checkpoint import load_checkpoint
from mmimic.env import ImitationEnv
from mmimic.motion import MotionError, MotionLibrary, read_clip, write_clip
from mmimic.motion.clip import MotionClip
from mmimic.train.config import ConfigError, SamplingConfig, resolve_config
from mmimic.train.sampling import EPS, FailureWeightedSampler
from mmimic.train.trainer import Trainer

REPO = Path(__file__).resolve().parent.parent
WALK = REPO / "motions" / "bimanual" / "opensim_walk.npz"


def closed_form(weights, episodes, terminations, config: SamplingConfig) -> np.ndarray:
    """p_c of the module docstring from the averages."""
    w = np.asarray(weights, dtype=np.float64)
    rate = np.asarray(terminations, dtype=np.float64) / (np.asarray(episodes, dtype=np.float64) + EPS)
    priority = w * (rate + EPS) ** config.exponent
    return (1 - config.uniform_mix) * priority / priority.sum() + config.uniform_mix * w / w.sum()


def test_sampler_matches_the_closed_form() -> None:
    config = SamplingConfig()
    weights = torch.tensor([1.0, 2.0, 0.0, 1.0])
    names = ["fail", "fine", "off", "idle"]
    sampler = FailureWeightedSampler(config, weights, names)
    np.testing.assert_allclose(sampler.probabilities.numpy(), [0.25, 0.5, 0.0, 0.25], rtol=1e-6)  # priors: rate 0.5
    # clip 0 fails every episode, clip 1 never, clip 2 (weight 0) and clip 3 are not drawn: 3 iterations
    for _ in range(3):
        sampler.update(torch.tensor([4.0, 4.0, 0.0, 0.0]), torch.tensor([4.0, 0.0, 0.0, 0.0]))
    decay = (1 - config.smoothing) ** 3
    episodes = [10 * decay + 4 * (1 - decay), 10 * decay + 4 * (1 - decay), 10.0, 10.0]
    terminations = [5 * decay + 4 * (1 - decay), 5 * decay, 5.0, 5.0]
    np.testing.assert_allclose(sampler.episodes.numpy(), episodes, rtol=1e-6)
    np.testing.assert_allclose(sampler.terminations.numpy(), terminations, rtol=1e-6)
    expected = closed_form(weights, episodes, terminations, config)
    np.testing.assert_allclose(sampler.probabilities.numpy(), expected, rtol=1e-5)
    p = sampler.probabilities
    assert p[0] > 0.25 > p[1] / 2 and p[2] == 0.0  # the failing clip gains, the weight-0 clip stays out

    # exponent 0: the manifest weights alone, whatever the failures
    flat = FailureWeightedSampler(SamplingConfig(exponent=0.0), weights, names)
    flat.update(torch.tensor([4.0, 4.0, 0.0, 0.0]), torch.tensor([4.0, 0.0, 0.0, 0.0]))
    np.testing.assert_allclose(flat.probabilities.numpy(), [0.25, 0.5, 0.0, 0.25], rtol=1e-6)

    # a checkpoint's averages follow the clips by name: a clip added since starts from the priors
    grown = FailureWeightedSampler(config, torch.ones(3), ["new", "fine", "fail"])
    assert grown.load_state_dict(sampler.state_dict()) == 2
    np.testing.assert_allclose(grown.episodes.numpy(), [10.0, episodes[1], episodes[0]], rtol=1e-6)
    np.testing.assert_allclose(grown.terminations.numpy(), [5.0, terminations[1], terminations[0]], rtol=1e-6)
    np.testing.assert_allclose(grown.probabilities.numpy(),
                               closed_form([1.0] * 3, grown.episodes, grown.terminations, config), rtol=1e-5)


def test_sampling_config_ranges() -> None:
    with pytest.raises(ConfigError, match=r"sampling.smoothing must be in \(0, 1\], got 0.0"):
        resolve_config("bimanual", "cpu", overrides=["sampling.smoothing=0.0"])
    with pytest.raises(ConfigError, match=r"sampling.uniform_mix must be in \[0, 1\]"):
        resolve_config("bimanual", "cpu", overrides=["sampling.uniform_mix=1.5"])
    config = resolve_config("bimanual", "cpu", overrides=["sampling.failure_weighted=false", 'categories=["walk"]'])
    assert not config.sampling.failure_weighted and config.categories == ["walk"]


def pose_pair(body: mmimic.Embodiment) -> tuple[np.ndarray, tuple[str, ...]]:
    """Two poses of the walking clip's joints: its first frame, and every hinge at mid-range."""
    walk = read_clip(WALK)
    a = walk.qpos[0].astype(np.float64)
    m = body.mj_model
    b = a.copy()
    for i, name in enumerate(walk.joint_names):
        joint = m.joint(name)
        if m.jnt_limited[joint.id]:
            b[i] = joint.range.mean()
    return np.stack([a, b]), walk.joint_names


def motion_set(directory: Path, body: mmimic.Embodiment) -> Path:
    """calm/still (2 equal frames: never fails), jump/jitter (poses alternating every frame, at rest:
    fails on its first step unless started on its last frame), calm/unused (weight 0)."""
    directory.mkdir()
    poses, names = pose_pair(body)
    still = np.repeat(poses[:1], 2, axis=0)
    jitter = poses[np.arange(40) % 2]
    for stem, qpos in (("still", still), ("jitter", jitter), ("unused", still)):
        clip = MotionClip(100.0, qpos.astype(np.float32), names, "bimanual", qvel=np.zeros_like(qpos, dtype=np.float32))
        write_clip(directory / f"{stem}.npz", clip)
    (directory / "manifest.toml").write_text(
        '[clips.still]\ncategory = "calm"\n[clips.jitter]\ncategory = "jump"\n'
        '[clips.unused]\ncategory = "calm"\nweight = 0\n'
    )
    return directory


@pytest.fixture(scope="module")
def jitter_set(tmp_path_factory, bimanual) -> Path:
    return motion_set(tmp_path_factory.mktemp("sampling") / "set", bimanual)


def test_category_filter_and_library_fields(jitter_set: Path, bimanual) -> None:
    library = MotionLibrary(bimanual, [jitter_set])
    assert library.clip_names == ["set/jitter", "set/still", "set/unused"]  # sorted by file name
    assert library.categories == ["calm", "jump"] and library.clip_category_id.tolist() == [1, 0, 0]
    np.testing.assert_allclose(library.clip_weight.numpy(), [0.5, 0.5, 0.0])
    calm = MotionLibrary(bimanual, [jitter_set], categories=["calm"])
    assert calm.clip_names == ["set/still", "set/unused"]
    with pytest.raises(MotionError, match="unknown category 'walk'; the clips' categories are calm, jump"):
        MotionLibrary(bimanual, [jitter_set], categories=["walk"])
    with pytest.raises(MotionError, match="no clips with split 'test' and categories calm"):
        MotionLibrary(bimanual, [jitter_set], split="test", categories=["calm"])
    # the two poses are far apart: a world at rest on one pose fails against the other at once
    far = (library.site_xpos[1] - library.site_xpos[0]).norm(dim=-1).mean()
    assert far > 0.1


def test_env_draws_follow_weights_written_in_place(jitter_set: Path, bimanual) -> None:
    """The captured reset reads the CDF rewritten by `set_clip_weights`: its draws follow the new
    probabilities within binomial spread, and a clip of weight 0 is never drawn."""
    library = MotionLibrary(bimanual, [jitter_set])
    env = ImitationEnv(bimanual, library, 64, "cpu")
    assert "reset" in env.captured
    cdf = mmimic_cdf(env)
    pointer = cdf.data_ptr()

    def frequencies(resets: int) -> np.ndarray:
        counts = torch.zeros(library.num_clips, dtype=torch.int64)
        for _ in range(resets):
            env.reset()
            counts += torch.bincount(env.clip.long(), minlength=library.num_clips)
        return counts.numpy()

    for probabilities in (library.clip_weight, torch.tensor([0.8, 0.2, 0.0])):
        env.set_clip_weights(probabilities)
        assert cdf.data_ptr() == pointer  # the graph's memory, not a new array
        counts = frequencies(40)
        n = counts.sum()
        p = probabilities.double().numpy()
        assert counts[2] == 0
        z = np.abs(counts[:2] - n * p[:2]) / np.sqrt(n * p[:2] * (1 - p[:2]))
        assert (z < 4.5).all(), (counts, p)
    with pytest.raises(ValueError, match=r"clip weights must have shape \(3,\)"):
        env.set_clip_weights(torch.ones(2))


def mmimic_cdf(env: ImitationEnv) -> torch.Tensor:
    import warp as wp

    return wp.to_torch(env.reference.clip_cdf)


def test_training_draws_the_failing_clip_more(jitter_set: Path, tmp_path: Path) -> None:
    """Trainer end to end: the jitter clip fails, the still clip does not; the per-category log
    carries both, the probabilities follow the closed form of the logged counts, the weight-0 clip
    is never drawn, and --category keeps one category."""
    overrides = ["network.actor_hidden=[32]", "network.critic_hidden=[32]", "run.num_envs=8", "run.num_steps=8",
                 "ppo.num_minibatches=2", "run.iterations=4", "run.validation_interval=100", "run.validation_envs=2",
                 "run.validation_steps=5"]
    config = resolve_config("bimanual", "cpu", overrides=overrides)
    config.motions = [str(jitter_set)]
    output = io.StringIO()
    trainer = Trainer(config, tmp_path / "run", "cpu", console=Console(file=output, width=200))
    trainer.train()
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 4
    for key in ("episode_length", "early_termination_rate", "reward", "episode_return", "episodes", "sampling_share"):
        assert f"category/calm/{key}" in records[0] and f"category/jump/{key}" in records[0], key
    jump = [r["category/jump/early_termination_rate"] for r in records]
    calm = [r["category/calm/early_termination_rate"] for r in records]
    assert min(jump) > 0.8 and max(calm) == 0.0, (jump, calm)
    assert "by category (length / early termination / reward per step): calm" in output.getvalue()
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    for tag in ("category/jump/early_termination_rate", "category/calm/episode_length", "category/calm/reward"):
        assert len(events.Scalars(tag)) == 4, tag

    # The sampler's state is the closed-form moving average of the logged per-category counts
    # (one drawable clip per category: jitter is clip 0, still clip 1, unused clip 2).
    s = SamplingConfig()
    episodes, terminations = np.array([10.0, 10.0, 10.0]), np.array([5.0, 5.0, 5.0])
    for r in records:
        for clip, category in ((0, "jump"), (1, "calm")):
            count = r[f"category/{category}/episodes"]
            if count > 0:
                rate = r[f"category/{category}/early_termination_rate"]
                episodes[clip] += s.smoothing * (count - episodes[clip])
                terminations[clip] += s.smoothing * (rate * count - terminations[clip])
    expected = closed_form([1.0, 1.0, 0.0], episodes, terminations, s)
    np.testing.assert_allclose(trainer.sampler.probabilities.numpy(), expected, rtol=1e-4)
    assert expected[0] > 0.8 and expected[2] == 0.0
    assert math.isclose(records[-1]["category/jump/sampling_share"], expected[0], rel_tol=1e-4)
    np.testing.assert_allclose(mmimic_cdf(trainer.env).numpy(), np.cumsum(expected) / expected.sum(), atol=1e-6)

    # --resume restores the averages from the checkpoint, and the environment draws by them at once
    checkpoint = load_checkpoint(tmp_path / "run" / "checkpoints" / "checkpoint_000004.pt")
    config.run.iterations = 5
    resumed = Trainer(config, tmp_path / "run", "cpu", console=Console(file=io.StringIO()), init_checkpoint=checkpoint,
                      resume=True)
    assert torch.equal(resumed.sampler.episodes, trainer.sampler.episodes)
    assert torch.equal(resumed.sampler.terminations, trainer.sampler.terminations)
    assert torch.equal(mmimic_cdf(resumed.env), mmimic_cdf(trainer.env))

    # --category through the runner's override: only the calm clips, so the sampler sees one drawable
    # clip of two (the unused one has weight 0) and the log one category
    only = resolve_config("bimanual", "cpu", overrides=[*overrides, "run.iterations=1", 'categories=["calm"]'])
    only.motions = [str(jitter_set)]
    calm_trainer = Trainer(only, tmp_path / "calm", "cpu", console=Console(file=io.StringIO()))
    assert calm_trainer.motions.clip_names == ["set/still", "set/unused"]
    calm_trainer.train()
    (record,) = [json.loads(line) for line in (tmp_path / "calm" / "metrics.jsonl").read_text().splitlines()]
    assert not any(k.startswith("category/jump/") for k in record)
    assert record["category/calm/sampling_share"] == pytest.approx(1.0)


def test_train_runner_refuses_an_unknown_category(jitter_set: Path, tmp_path: Path, capsys) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("mmimic_train_runner_sampling", REPO / "runners" / "train.py")
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)
    args = ["--embodiment", "bimanual", "--preset", "cpu", "--device", "cpu", "--motions", str(jitter_set),
            "--out", str(tmp_path / "run")]
    assert runner.main([*args, "--category", "walk,jump"]) == 2
    assert "unknown category 'walk'; the clips' categories are calm, jump" in capsys.readouterr().out
    assert not (tmp_path / "run").exists()
    with pytest.raises(SystemExit):
        runner.main([*args, "--category", ","])
    assert "--category needs at least one category name" in capsys.readouterr().err
