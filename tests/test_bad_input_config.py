"""Bad values at the door: training configuration, embodiment.toml, environment options, manifests and clips
are refused with the field's name (and the nearest known name for a misspelt key)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import mmimic
from mmimic.env import EnvConfig
from mmimic.motion import MotionError, read_clip, write_clip
from mmimic.motion.clip import MotionClip, check_clip, fit_problems
from mmimic.motion.manifest import manifest_problems
from mmimic.train.config import ConfigError, resolve_config

REPO = Path(__file__).resolve().parent.parent
CLIP = REPO / "motions/bimanual/opensim_walk.npz"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("ppo.lr=nan", "ppo.lr must be >= 0 and finite"),
        ("ppo.lr=-1", "ppo.lr must be >= 0 and finite"),
        ("ppo.lr=inf", "ppo.lr must be >= 0 and finite"),
        ("ppo.gamma=2.0", r"ppo.gamma must be in \(0, 1\]"),
        ("ppo.gamma=0", r"ppo.gamma must be in \(0, 1\]"),
        ("ppo.lam=1.5", r"ppo.lam must be in \[0, 1\]"),
        ("ppo.clip_eps=0", "ppo.clip_eps must be > 0"),
        ("ppo.value_clip_eps=-0.2", "ppo.value_clip_eps must be > 0"),
        ("ppo.vf_coef=nan", "ppo.vf_coef must be >= 0"),
        ("ppo.ent_coef=-1", "ppo.ent_coef must be >= 0"),
        ("ppo.max_grad_norm=0", "ppo.max_grad_norm must be > 0"),
        ("ppo.num_minibatches=0", "ppo.num_minibatches must be >= 1"),
        ("ppo.update_epochs=0", "ppo.update_epochs must be >= 1"),
        ("ppo.optimizer=sgd", "ppo.optimizer must be 'muon' or 'adam'"),
        ("ppo.muon_weight_decay=-1e-3", "ppo.muon_weight_decay must be >= 0"),
        ("run.num_steps=0", "run.num_steps must be >= 1"),
        ("run.num_envs=0", "run.num_envs must be >= 1"),
        ("run.iterations=0", "run.iterations must be >= 1"),
        ("run.validation_interval=0", "run.validation_interval must be >= 1"),
        ("run.keep_checkpoints=0", "run.keep_checkpoints must be >= 1"),
        ("run.max_nonfinite_actions=2.0", r"run.max_nonfinite_actions must be a fraction in \[0, 1\]"),
        ("network.actor_hidden=[0]", "network.actor_hidden must be a non-empty list of layer sizes >= 1"),
        ("network.critic_hidden=[]", "network.critic_hidden must be a non-empty list"),
        ("network.init_std=0", "network.init_std must be > 0"),
        ("network.init_std=nan", "network.init_std must be > 0"),
        # unknown keys and wrong types: the nearest known name
        ("ppo.gama=0.9", "unknown key 'ppo.gama' \\(did you mean 'gamma'\\?\\)"),
        ("run.num_env=4", "unknown key 'run.num_env' \\(did you mean 'num_envs'\\?\\)"),
        ("netwrk.init_std=1.0", "unknown configuration section 'netwrk' \\(did you mean 'network'\\?\\)"),
        ("env.site_deviaton=0.2", "unknown key 'env.site_deviaton' \\(did you mean 'site_deviation'\\?\\)"),
        ("env.horizon=long", "env.horizon must be int, got 'long'"),
        ("env.touch=1", "env.touch must be bool, got 1"),
        ("env.muscle_channels=5", "env.muscle_channels must be a list, got 5"),
        ('env.reward_weights.rpos="abc"', "env.reward_weights.rpos must be float, got 'abc'"),
    ],
)
def test_bad_overrides_are_refused_by_name(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve_config("bimanual", "cpu", overrides=[override])


def test_learning_rate_zero_switches_learning_off_and_is_accepted() -> None:
    assert resolve_config("bimanual", "cpu", overrides=["ppo.lr=0.0"]).ppo.lr == 0.0


def test_config_file_unknown_key_and_binary_file(tmp_path: Path) -> None:
    toml = tmp_path / "run.toml"
    toml.write_text("[ppo]\nlearning_rate = 3e-4\n")
    with pytest.raises(ConfigError, match=f"{toml}: unknown key 'ppo.learning_rate'"):
        resolve_config("bimanual", "cpu", toml)
    binary = tmp_path / "weights.toml"
    binary.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ConfigError, match=f"--config {binary}: not a text file"):
        resolve_config("bimanual", "cpu", binary)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("[muscles]", "[muscels]"), "unknown section or key 'muscels' \\(did you mean 'muscles'\\?\\)"),
        (("nconmax = 16", "ncomax = 16"), "unknown key 'contacts.ncomax' \\(did you mean 'nconmax'\\?\\)"),
        (("body = \"thorax\"", "body = \"thorax\"\nsite = \"x\""), "unknown key 'mimic_sites.site'"),
    ],
)
def test_embodiment_toml_unknown_sections_and_keys(tmp_path: Path, edit: tuple[str, str], message: str) -> None:
    text = (REPO / "models/bimanual/embodiment.toml").read_text()
    assert edit[0] in text
    (tmp_path / "embodiment.toml").write_text(text.replace(edit[0], edit[1], 1))
    with pytest.raises(mmimic.EmbodimentError, match=message):
        mmimic.load_embodiment(tmp_path)


def test_environment_options_suggest_and_check_values(bimanual: mmimic.Embodiment) -> None:
    with pytest.raises(ValueError, match="unknown environment option\\(s\\) \\['site_deviaton'\\] \\(did you mean 'site_deviation'\\?\\)"):
        EnvConfig.for_embodiment(bimanual, site_deviaton=0.2)
    with pytest.raises(ValueError, match="reward_weights must be finite"):
        EnvConfig.for_embodiment(bimanual, reward_weights={"qpos": math.inf})


@pytest.mark.parametrize("weight", ["inf", "nan", "-1.0"])
def test_manifest_weight_must_be_finite_and_not_negative(tmp_path: Path, weight: str) -> None:
    write_clip(tmp_path / "walk.npz", read_clip(CLIP))
    (tmp_path / "manifest.toml").write_text(f"[clips.walk]\nweight = {weight}\n")
    _, problems = manifest_problems(tmp_path)
    assert len(problems) == 1 and "clips.walk.weight must be a finite number >= 0" in problems[0]


@pytest.mark.parametrize(
    ("fps", "frames", "message"),
    [
        (1e9, None, "fps 1e+09 is outside 1-1000 frames per second"),
        (1e-4, None, "fps 0.0001 is outside 1-1000 frames per second"),
        (1000.0, 2, "lasts 0.001 s; a clip must last from one control step"),
        (1.0, 4000, "lasts 3999 s; a clip must last from one control step"),
    ],
)
def test_clip_rate_and_duration_limits(tmp_path: Path, bimanual: mmimic.Embodiment, fps: float,
                                       frames: int | None, message: str) -> None:
    clip = read_clip(CLIP)
    qpos = clip.qpos if frames is None else np.resize(clip.qpos, (frames, clip.qpos.shape[1]))
    bad = MotionClip(fps, qpos, clip.joint_names, clip.embodiment)
    assert fit_problems(clip, bimanual)[1] == []  # the shipped clip itself is fine
    problems = fit_problems(bad, bimanual)[1]
    assert len(problems) == 1 and message in problems[0], problems
    write_clip(tmp_path / "bad.npz", bad)
    assert check_clip(tmp_path / "bad.npz", bimanual) == problems  # what `motions.py validate` reports
    with pytest.raises(MotionError, match=str(tmp_path / "bad.npz")):
        mmimic.MotionLibrary(bimanual, [tmp_path / "bad.npz"])


def test_zero_filled_clip_is_named_without_numpy_pickle_advice(tmp_path: Path) -> None:
    path = tmp_path / "zeros.npz"
    path.write_bytes(bytes(4096))
    with pytest.raises(MotionError) as info:
        read_clip(path)
    assert str(path) in str(info.value) and "zero-filled" in str(info.value) and "pickle" not in str(info.value)


def test_trainer_checks_a_configuration_built_in_python(tmp_path: Path) -> None:
    from mmimic.train.trainer import Trainer

    config = resolve_config("bimanual", "cpu")
    config.ppo.lr = math.nan
    with pytest.raises(ConfigError, match="ppo.lr must be >= 0 and finite"):
        Trainer(config, tmp_path / "run", "cpu")
    assert not (tmp_path / "run").exists()
