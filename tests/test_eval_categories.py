"""Evaluation grouped by motion category and by train/test split: metrics, eval.py's table, JSON and report.

Truths: each group's metrics equal the overall metrics computed on that group's episodes alone
(a separate slicing of the arrays), the hand-counted episodes, and the per-clip rows of the
same evaluation.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest

from mmimic.eval.metrics import RolloutArrays, compute_metrics
from mmimic.motion import read_clip, write_clip

REPO = Path(__file__).resolve().parent.parent
CATEGORIES = ["walk", "run", "walk", "jump", "run"]
SPLITS = ["train", "train", "test", "test", "train"]


def runner(name: str):
    spec = importlib.util.spec_from_file_location(f"mmimic_{name}_runner_categories", REPO / "runners" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def random_rollout(rng: np.random.Generator, episodes: int = 5, steps: int = 6, nq: int = 9) -> RolloutArrays:
    """A free root (7 columns) and two hinges; episodes of different lengths, some terminated."""
    def quats(shape):
        q = rng.normal(size=(*shape, 4))
        return q / np.linalg.norm(q, axis=-1, keepdims=True)

    qpos = rng.normal(size=(episodes, steps, nq))
    ref = qpos + 0.1 * rng.normal(size=qpos.shape)
    qpos[..., 3:7], ref[..., 3:7] = quats((episodes, steps)), quats((episodes, steps))
    length = np.array([6, 3, 5, 2, 6])
    valid = np.arange(steps)[None] < length[:, None]
    return RolloutArrays(
        qpos=qpos, ref_qpos=ref, qvel=rng.normal(size=(episodes, steps, nq - 1)),
        ref_qvel=rng.normal(size=(episodes, steps, nq - 1)), site_pos=rng.normal(size=(episodes, steps, 4, 3)),
        ref_site_pos=rng.normal(size=(episodes, steps, 4, 3)), valid=valid, episode_length=length,
        episode_return=rng.normal(size=episodes), terminated=np.array([False, True, False, True, False]),
        clip_length=np.array([7, 10, 6, 9, 7]),
    )


def subset(r: RolloutArrays, rows: list[int]) -> RolloutArrays:
    return RolloutArrays(**{k: np.asarray(v)[rows] for k, v in vars(r).items()})


def test_group_metrics_equal_the_overall_metrics_of_the_group_alone() -> None:
    rollout = random_rollout(np.random.default_rng(3))
    names = [f"clip{i}" for i in range(5)]
    metrics = compute_metrics(rollout, names, 0, [3], categories=CATEGORIES, splits=SPLITS)
    assert list(metrics.per_category) == ["jump", "run", "walk"] and list(metrics.per_split) == ["test", "train"]
    for labels, groups in ((CATEGORIES, metrics.per_category), (SPLITS, metrics.per_split)):
        for group, values in groups.items():
            rows = [i for i, label in enumerate(labels) if label == group]
            alone = compute_metrics(subset(rollout, rows), [names[i] for i in rows], 0, [3]).overall
            assert values.keys() == alone.keys()
            for key, value in alone.items():
                assert math.isclose(values[key], value, rel_tol=1e-12), (group, key)
    # by hand: run = clips 1 and 4 (one terminated), 3 + 6 covered frames of 10 + 7
    run = metrics.per_category["run"]
    assert run["episodes"] == 2 and run["early_termination_rate"] == 0.5
    assert math.isclose(run["frame_coverage"], (3 + 7) / 17)
    assert metrics.per_split["test"]["episodes"] == 2 and metrics.per_split["train"]["episodes"] == 3
    as_json = metrics.as_dict()
    assert set(as_json) == {"overall", "per_category", "per_split", "per_clip"}
    with pytest.raises(ValueError, match="categories has 2 names for 5 episodes"):
        compute_metrics(rollout, names, 0, [3], categories=["walk", "run"])


@pytest.fixture(scope="module")
def categorised(tmp_path_factory) -> tuple[Path, Path]:
    """Five 40-frame bimanual clips cut from the shipped walk and run with CATEGORIES and SPLITS, and
    a checkpoint of one PPO iteration on them."""
    root = tmp_path_factory.mktemp("categories")
    directory = root / "set"
    directory.mkdir()
    manifest = []
    for i, (category, split) in enumerate(zip(CATEGORIES, SPLITS)):
        source = read_clip(REPO / "motions" / "bimanual" / ("cmu_09_11_run.npz" if category == "run" else "opensim_walk.npz"))
        start = 10 * i
        source.qpos = source.qpos[start : start + 40]
        source.qvel = None if source.qvel is None else source.qvel[start : start + 40]
        write_clip(directory / f"c{i}.npz", source)
        manifest.append(f'[clips.c{i}]\ncategory = "{category}"\nsplit = "{split}"\n')
    (directory / "manifest.toml").write_text("\n".join(manifest))
    out = root / "run"
    options = ["--embodiment", "bimanual", "--preset", "cpu", "--num-envs", "2", "--iterations", "1", "--device", "cpu",
               "--motions", str(directory), "--out", str(out), "--set", "network.actor_hidden=[32]",
               "--set", "network.critic_hidden=[32]", "--set", "run.validation_envs=2", "--set", "run.validation_steps=5",
               "--set", "run.num_steps=4", "--set", "ppo.num_minibatches=2"]
    assert runner("train").main(options) == 0
    (checkpoint,) = sorted((out / "checkpoints").glob("checkpoint_*.pt"))
    return directory, checkpoint


def test_eval_groups_clips_by_category_and_split(categorised, tmp_path: Path, capsys) -> None:
    directory, checkpoint = categorised
    out_json, report = tmp_path / "eval.json", tmp_path / "report"
    args = ["--checkpoint", str(checkpoint), "--num-envs", "5", "--device", "cpu", "--no-gait",
            "--json", str(out_json), "--report", str(report)]
    assert runner("eval").main(args) == 0  # the run's motions: every split of the set
    table = capsys.readouterr().out
    for label in ("category jump (1)", "category run (2)", "category walk (2)", "split test (2)", "split train (3)"):
        assert label in table, (label, table)
    metrics = json.loads(out_json.read_text())["metrics"]
    per_clip = metrics["per_clip"]
    assert sorted(per_clip) == [f"set/c{i}" for i in range(5)]
    for labels, key in ((CATEGORIES, "per_category"), (SPLITS, "per_split")):
        for group, values in metrics[key].items():
            clips = [f"set/c{i}" for i, label in enumerate(labels) if label == group]
            assert values["episodes"] == len(clips)
            assert math.isclose(values["mean_return"], np.mean([per_clip[c]["return"] for c in clips]), rel_tol=1e-9)
            assert math.isclose(values["mean_length"], np.mean([per_clip[c]["length"] for c in clips]), rel_tol=1e-9)
            terminated = np.mean([per_clip[c]["terminated"] for c in clips])
            assert math.isclose(values["early_termination_rate"], terminated)
            for error in ("err_joint_pos", "err_site_abs"):
                assert values[error] is not None and math.isfinite(values[error]), (group, error)
            assert values["err_root_xyz"] is None  # fixed base
    text = (report / "report.md").read_text()
    assert "By category:" in text and "| walk | 2 |" in text and "| test | 2 |" in text
    assert "](groups.png)" in text and (report / "groups.png").stat().st_size > 1000

    # --category keeps those clips only
    assert runner("eval").main([*args[:6], "--no-gait", "--category", "run", "--json", str(out_json)]) == 0
    metrics = json.loads(out_json.read_text())["metrics"]
    assert sorted(metrics["per_clip"]) == ["set/c1", "set/c4"] and list(metrics["per_category"]) == ["run"]
    assert runner("eval").main([*args[:6], "--category", "dance"]) == 2
    assert "unknown category 'dance'; the clips' categories are jump, run, walk" in capsys.readouterr().out
