"""The observation layout: named blocks in order, and the per-column table the gather kernel reads.

MuscleMimic's layouts (arXiv 2603.25544). Full body (2418 values): q_free_joint 5, q_all_pos 82,
dq_free_joint 6, dq_all_vel 82, muscle_length_velocity_force_excitation_activation 1770 (five
values per muscle, interleaved), touch 4, goal_site_rpos 48, goal_site_rangles 48,
goal_site_rvel 96, goal_ref_site_rpos 48, goal_lookahead 228 (per look-ahead frame: root
position delta 3, root velocity delta 6, reference site rpos 48), goal_phase 1.
Bimanual (701; 1597 with 5 look-ahead frames): q_all_pos 76, dq_all_vel 76,
muscle_force_activation 252, goal_site_rpos 18, goal_site_rangles 18, goal_site_rvel 36,
goal_ref_qpos, goal_ref_qvel, goal_ref_site_rpos, goal_ref_site_rangles, goal_ref_site_rvel
(each frame after frame), goal_phase 1. Site features are site-major; rvel is [angular, linear].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mmimic.embodiment import Embodiment
from mmimic.env.config import EnvConfig
from mmimic.kernels import observation as obs

CHANNEL_SOURCES = {
    "length": obs.ACTUATOR_LENGTH,
    "velocity": obs.ACTUATOR_VELOCITY,
    "force": obs.ACTUATOR_FORCE,
    "excitation": obs.CTRL,
    "activation": obs.ACT,
}


@dataclass(frozen=True)
class ObsLayout:
    """Block names and sizes, and for every column its source, look-ahead index and element index."""

    blocks: list[tuple[str, int]]
    source: np.ndarray
    lookahead: np.ndarray
    index: np.ndarray

    @property
    def size(self) -> int:
        return int(self.source.shape[0])


class _Builder:
    def __init__(self) -> None:
        self.blocks: list[tuple[str, int]] = []
        self.columns: list[tuple[int, int, int]] = []

    def add(self, name: str, columns: list[tuple[int, int, int]]) -> None:
        self.blocks.append((name, len(columns)))
        self.columns.extend(columns)

    def layout(self) -> ObsLayout:
        table = np.array(self.columns, dtype=np.int32).reshape(-1, 3)
        return ObsLayout(self.blocks, table[:, 0].copy(), table[:, 1].copy(), table[:, 2].copy())


def column(source: int, indices: range | list[int], k: int = 0) -> list[tuple[int, int, int]]:
    return [(source, k, int(i)) for i in indices]


def build_layout(embodiment: Embodiment, config: EnvConfig, root_qpos_adr: int, root_qvel_adr: int) -> ObsLayout:
    """The layout for a resolved `config`; root addresses are -1 for a fixed base."""
    m = embodiment.mj_model
    b = _Builder()
    qpos_cols, qvel_cols = list(range(m.nq)), list(range(m.nv))
    if root_qpos_adr >= 0:
        b.add("q_free_joint", column(obs.QPOS, range(root_qpos_adr + 2, root_qpos_adr + 7)))
        qpos_cols = [i for i in qpos_cols if not root_qpos_adr <= i < root_qpos_adr + 7]
        qvel_cols = [i for i in qvel_cols if not root_qvel_adr <= i < root_qvel_adr + 6]
    b.add("q_all_pos", column(obs.QPOS, qpos_cols))
    if root_qvel_adr >= 0:
        b.add("dq_free_joint", column(obs.QVEL, range(root_qvel_adr, root_qvel_adr + 6)))
    b.add("dq_all_vel", column(obs.QVEL, qvel_cols))
    channels = config.muscle_channels or ()
    b.add(
        "muscle_" + "_".join(channels),
        [(CHANNEL_SOURCES[c], 0, j) for j in range(m.nu) for c in channels],
    )
    if config.touch:
        b.add("touch", column(obs.SENSOR, embodiment.touch_sensor_adr.tolist()))

    rel = len(embodiment.mimic_sites) - 1
    lookahead = config.lookahead or 1
    b.add("goal_site_rpos", column(obs.SITE_RPOS, range(3 * rel)))
    b.add("goal_site_rangles", column(obs.SITE_RANGLES, range(3 * rel)))
    b.add("goal_site_rvel", column(obs.SITE_RVEL, range(6 * rel)))
    if config.goal == "concise":
        b.add("goal_ref_site_rpos", column(obs.REF_RPOS, range(3 * rel)))
        b.add(
            "goal_lookahead",
            [
                entry
                for k in range(1, lookahead)
                for entry in column(obs.REF_QPOS_DELTA, range(root_qpos_adr, root_qpos_adr + 3), k)
                + column(obs.REF_QVEL_DELTA, range(root_qvel_adr, root_qvel_adr + 6), k)
                + column(obs.REF_RPOS, range(3 * rel), k)
            ],
        )
    else:
        for name, source, width in (
            ("goal_ref_qpos", obs.REF_QPOS, m.nq),
            ("goal_ref_qvel", obs.REF_QVEL, m.nv),
            ("goal_ref_site_rpos", obs.REF_RPOS, 3 * rel),
            ("goal_ref_site_rangles", obs.REF_RANGLES, 3 * rel),
            ("goal_ref_site_rvel", obs.REF_RVEL, 6 * rel),
        ):
            b.add(name, [entry for k in range(lookahead) for entry in column(source, range(width), k)])
    if config.motion_phase:
        b.add("goal_phase", [(obs.PHASE, 0, 0)])
    return b.layout()
