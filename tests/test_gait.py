"""mmimic.eval.gait against documented gait events, closed forms and numpy.

Truths: the event times in motions/sources/opensim_moco_walk/SOURCE.md; synthetic forces
with analytic threshold crossings; a sine; numpy's corrcoef; and, for the name mappings,
the MyoFullBody model itself (skipped where musclemimic_models is not installed).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmimic.eval.gait import (
    EMG_TO_MUSCLES,
    GaitEvents,
    compare_curves,
    detect_gait_events,
    grf_body_weight,
    normalize_cycle,
    normalize_strides,
    strides,
)
from mmimic.io.opensim import COORDINATE_TO_JOINT, read_opensim_table

DATA = Path(__file__).resolve().parents[1] / "motions" / "sources" / "opensim_moco_walk"


@pytest.fixture(scope="module")
def grf():
    return read_opensim_table(DATA / "grf_walk.mot")


# --------------------------------------------------------------------- events


def test_events_of_the_walking_trial_match_source_md(grf):
    # SOURCE.md: right heel strikes 0.267, 1.412 s; right toe-offs 1.024, 2.168 s;
    # left heel strike 0.836 s, left toe-off 1.590 s (vertical force > 20 N). The
    # documented times are given to 1 ms on a 0.5 ms grid.
    right = detect_gait_events(grf.time, grf.column("ground_force_r_vy"))
    np.testing.assert_allclose(right.heel_strikes, [0.267, 1.412], atol=0.002)
    np.testing.assert_allclose(right.toe_offs, [1.024, 2.168], atol=0.002)
    left = detect_gait_events(grf.time, grf.column("ground_force_l_vy"))
    np.testing.assert_allclose(left.heel_strikes, [0.836], atol=0.002)
    np.testing.assert_allclose(left.toe_offs, [1.590], atol=0.002)
    # stride 1.145 s, peak vertical force about 940 N
    assert strides(right)[0][1] - strides(right)[0][0] == pytest.approx(1.145, abs=0.003)
    assert grf.column("ground_force_r_vy").max() == pytest.approx(940, abs=10)


def test_right_stride_is_66_percent_stance(grf):
    (start, end), = strides(detect_gait_events(grf.time, grf.column("ground_force_r_vy")))
    cycle = normalize_cycle(grf.time, grf.column("ground_force_r_vy"), start, end)
    in_stance = np.flatnonzero(cycle > 20.0)
    # stance is a single block from 0 % to about 66 % (SOURCE.md: stance ~ 66 %)
    assert in_stance[0] in (0, 1)
    assert np.all(np.diff(in_stance) == 1)
    assert in_stance[-1] in (65, 66)
    assert np.all(cycle[70:98] < 1.0)  # swing: no load on the right plate


def _trapezoids(dt, on_off, amplitude=800.0, ramp=0.05, duration=3.0):
    """A force that ramps linearly from 0 to ``amplitude`` over ``ramp`` s from each ``on``
    and back down over ``ramp`` s from each ``off``; ramps start on the sample grid so the
    sampled force is exactly linear across every threshold crossing."""
    t = np.arange(int(round(duration / dt)) + 1) * dt
    f = np.zeros_like(t)
    for on, off in on_off:
        shape = np.clip(np.minimum((t - on) / ramp, (off + ramp - t) / ramp), 0.0, 1.0)
        f = np.maximum(f, amplitude * shape)
    return t, f


def test_square_wave_crossings_are_interpolated_exactly():
    # Threshold 20 N of 800 N is crossed 20/800 of the way along a 0.05 s ramp: 1.25 ms
    # after a rise starts and 1.25 ms before a fall ends, never on a sample (dt = 10 ms).
    t, f = _trapezoids(0.01, [(0.30, 1.00), (1.40, 2.10)])
    events = detect_gait_events(t, f)
    np.testing.assert_allclose(events.heel_strikes, [0.30125, 1.40125], atol=1e-12)
    np.testing.assert_allclose(events.toe_offs, [1.04875, 2.14875], atol=1e-12)
    assert strides(events) == [pytest.approx((0.30125, 1.40125))]


def test_hard_square_wave_crossing_between_samples():
    # A step from 0 to 800 N between samples: the linear interpolant crosses 20 N at
    # t[i-1] + dt * 20/800.
    dt = 0.002
    t = np.arange(0, 2.0, dt)
    f = np.where((t > 0.5003) & (t < 1.2003), 800.0, 0.0)
    events = detect_gait_events(t, f)
    i_on = np.flatnonzero(f > 0)[0]
    i_off = np.flatnonzero(f > 0)[-1] + 1
    assert events.heel_strikes == pytest.approx([t[i_on - 1] + dt * 20 / 800])
    assert events.toe_offs == pytest.approx([t[i_off - 1] + dt * (800 - 20) / 800])


def test_flicker_and_spike_are_debounced():
    t, f = _trapezoids(0.001, [(0.30, 1.00)], ramp=0.01)
    f[(t > 0.6) & (t < 0.63)] = 5.0  # 30 ms dip below threshold inside stance
    f[(t > 1.5) & (t < 1.55)] = 300.0  # 50 ms spike in swing
    events = detect_gait_events(t, f)
    assert events.heel_strikes == pytest.approx([0.30025])
    assert events.toe_offs == pytest.approx([1.00975])
    raw = detect_gait_events(t, f, min_stance=0.0, min_swing=0.0)
    assert len(raw.heel_strikes) == 3 and len(raw.toe_offs) == 3


def test_contact_cut_by_the_record_has_no_event():
    t, f = _trapezoids(0.001, [(-0.5, 0.40), (1.0, 2.5)], duration=2.0)
    assert f[0] > 20 and f[-1] > 20
    events = detect_gait_events(t, f)
    assert events.heel_strikes == pytest.approx([1.0 + 0.05 * 20 / 800])
    assert events.toe_offs == pytest.approx([0.45 - 0.05 * 20 / 800])
    assert strides(events) == []


def test_event_input_checked():
    t = np.linspace(0, 1, 11)
    with pytest.raises(ValueError, match="vertical_force"):
        detect_gait_events(t, np.zeros(10))
    with pytest.raises(ValueError, match="strictly increasing"):
        detect_gait_events(t[::-1], np.zeros(11))
    with pytest.raises(ValueError, match="NaN"):
        detect_gait_events(t, np.full(11, np.nan))


# --------------------------------------------------------------------- cycles


def test_normalize_cycle_of_a_sine():
    start, end = 0.267, 1.412
    t = np.arange(0.0, 2.0, 0.001)
    period = end - start
    values = np.sin(2 * np.pi * (t - start) / period)
    cycle = normalize_cycle(t, values, start, end)
    assert cycle.shape == (101,)
    np.testing.assert_allclose(cycle, np.sin(2 * np.pi * np.arange(101) / 100), atol=1e-5)
    # several columns at once, and another resolution
    both = normalize_cycle(t, np.stack([values, 2 * values], axis=1), start, end, n_points=51)
    np.testing.assert_allclose(both[:, 1], 2 * both[:, 0])
    np.testing.assert_allclose(both[:, 0], np.sin(2 * np.pi * np.arange(51) / 50), atol=1e-5)
    stacked = normalize_strides(t, values, [(0.1, 0.6), (0.6, 1.1)])
    assert stacked.shape == (2, 101)


def test_normalize_cycle_refuses_windows_outside_the_data():
    t = np.linspace(0, 1, 101)
    with pytest.raises(ValueError, match="outside"):
        normalize_cycle(t, t, 0.5, 1.5)
    with pytest.raises(ValueError, match="start < end"):
        normalize_cycle(t, t, 0.6, 0.5)
    with pytest.raises(ValueError, match="no complete stride"):
        normalize_strides(t, t, [])


def test_strides_are_consecutive_heel_strikes():
    events = GaitEvents(heel_strikes=np.array([0.1, 1.2, 2.4]), toe_offs=np.array([0.8, 1.9]))
    assert strides(events) == [(0.1, 1.2), (1.2, 2.4)]


def test_grf_body_weight():
    np.testing.assert_allclose(grf_body_weight(np.array([0.0, 686.7, 1373.4]), 70.0), [0, 1, 2])
    with pytest.raises(ValueError, match="body_mass"):
        grf_body_weight(np.ones(3), 0.0)


# --------------------------------------------------------------------- comparison


def test_compare_curves_against_numpy():
    rng = np.random.default_rng(7)
    phase = np.linspace(0, 2 * np.pi, 101)
    sim = np.sin(phase) + 0.1 * rng.standard_normal((3, 101))
    exp = np.sin(phase + 0.2) + 0.1 * rng.standard_normal((4, 101))
    result = compare_curves(sim, exp)

    sim_mean, exp_mean = sim.mean(axis=0), exp.mean(axis=0)
    assert result.pearson_r == pytest.approx(np.corrcoef(sim_mean, exp_mean)[0, 1], abs=1e-12)
    squared = 0.0
    for k in range(101):
        squared += (sim_mean[k] - exp_mean[k]) ** 2
    assert result.rmse == pytest.approx((squared / 101) ** 0.5, rel=1e-12)
    np.testing.assert_allclose(result.exp_sd, np.std(exp, axis=0, ddof=1))
    per_stride = [np.corrcoef(s, exp_mean)[0, 1] for s in sim]
    np.testing.assert_allclose(result.stride_pearson_r, per_stride, atol=1e-12)
    assert result.mean_stride_pearson_r == pytest.approx(np.mean(per_stride), abs=1e-12)


def test_compare_curves_single_strides_and_errors():
    phase = np.linspace(0, 2 * np.pi, 101)
    same = compare_curves(np.sin(phase), 3 * np.sin(phase) + 1)
    assert same.pearson_r == pytest.approx(1.0)
    assert same.exp_sd is None
    assert same.rmse == pytest.approx(np.sqrt(np.mean((2 * np.sin(phase) + 1) ** 2)))
    with pytest.raises(ValueError, match="same number of cycle points"):
        compare_curves(np.zeros((2, 101)), np.zeros((2, 51)))
    with pytest.raises(ValueError, match="constant"):
        compare_curves(np.ones(101), np.sin(phase))


# --------------------------------------------------------------------- name mappings


def test_emg_channels_are_the_file_columns():
    emg = read_opensim_table(DATA / "electromyography.sto")
    assert list(EMG_TO_MUSCLES) == emg.labels


@pytest.fixture(scope="module")
def myofullbody():
    mujoco = pytest.importorskip("mujoco")
    mm = pytest.importorskip("musclemimic_models")
    return mujoco.MjModel.from_xml_path(str(mm.get_xml_path("myofullbody")))


def test_emg_muscles_exist_in_myofullbody(myofullbody):
    actuators = {myofullbody.actuator(i).name for i in range(myofullbody.nu)}
    for channel, muscles in EMG_TO_MUSCLES.items():
        assert muscles and set(muscles) <= actuators, channel


def test_coordinate_mapping_against_myofullbody(myofullbody):
    """Every mapped joint exists; the trial's leg angles (100 Hz file, radians) lie inside
    the joint ranges; and positive values move the segments as Rajagopal's conventions
    say (hip flexion: knee forward; adduction: knee medial; internal rotation: toes
    medial; knee flexion: ankle backward; dorsiflexion: toes up)."""
    import mujoco

    m = myofullbody
    joints = {m.joint(i).name: i for i in range(m.njnt)}
    for coordinate, mapping in COORDINATE_TO_JOINT.items():
        assert mapping.joint in joints, coordinate

    trial = read_opensim_table(DATA / "coordinates_full_trial_100hz.mot")
    for coordinate, mapping in COORDINATE_TO_JOINT.items():
        if coordinate not in trial:
            continue
        q = mapping.scale * trial.radians(coordinate)
        low, high = m.jnt_range[joints[mapping.joint]]
        assert low - 1e-9 <= q.min() and q.max() <= high + 1e-9, coordinate

    data = mujoco.MjData(m)

    def body_positions(qpos):
        data.qpos[:] = qpos
        mujoco.mj_kinematics(m, data)
        return {name: data.xpos[m.body(name).id].copy() for name in
                ("tibia_r", "tibia_l", "talus_r", "talus_l", "toes_r", "toes_l",
                 "calcn_r", "femur_r", "femur_l")}

    rest = body_positions(m.qpos0)
    forward = rest["toes_r"] - rest["calcn_r"]
    right = rest["femur_r"] - rest["femur_l"]
    forward[2] = right[2] = 0.0
    forward /= np.linalg.norm(forward)
    right /= np.linalg.norm(right)
    up = np.array([0.0, 0.0, 1.0])

    def moved(joint, body):
        qpos = m.qpos0.copy()
        qpos[m.jnt_qposadr[joints[joint]]] += 0.3
        return body_positions(qpos)[body] - rest[body]

    for side, medial in (("r", -right), ("l", right)):
        assert moved(f"hip_flexion_{side}", f"tibia_{side}") @ forward > 0.05
        assert moved(f"hip_adduction_{side}", f"tibia_{side}") @ medial > 0.05
        assert moved(f"hip_rotation_{side}", f"toes_{side}") @ medial > 0.02
        assert moved(f"knee_angle_{side}", f"talus_{side}") @ forward < -0.05
        assert moved(f"ankle_angle_{side}", f"toes_{side}") @ up > 0.02


def test_lumbar_scale_matches_the_equality_constraints(myofullbody):
    """q_myo = scale * q_rajagopal: the five-level MyoFullBody lumbar spine, driven through
    its joint equality constraints, turns the torso by q_rajagopal relative to the pelvis."""
    import mujoco

    m = myofullbody
    data = mujoco.MjData(m)

    def torso_in_pelvis(qpos):
        data.qpos[:] = qpos
        mujoco.mj_kinematics(m, data)
        pelvis = data.xmat[m.body("pelvis").id].reshape(3, 3)
        torso = data.xmat[m.body("torso").id].reshape(3, 3)
        return pelvis.T @ torso

    rest = torso_in_pelvis(m.qpos0)
    axes = (("lumbar_extension", 2), ("lumbar_bending", 0), ("lumbar_rotation", 1))
    for coordinate, axis in axes:
        mapping = COORDINATE_TO_JOINT[coordinate]
        angle = 0.2  # rad of Rajagopal coordinate
        qpos = m.qpos0.copy()
        driver = m.joint(mapping.joint).id
        qpos[m.jnt_qposadr[driver]] += mapping.scale * angle
        for e in range(m.neq):
            if m.eq_type[e] == mujoco.mjtEq.mjEQ_JOINT and m.eq_obj2id[e] == driver:
                follower = m.jnt_qposadr[m.eq_obj1id[e]]
                x = mapping.scale * angle
                c = m.eq_data[e][:5]
                qpos[follower] = m.qpos0[follower] + np.polyval(c[::-1], x)
        rotation = rest.T @ torso_in_pelvis(qpos)
        quat = np.zeros(4)
        mujoco.mju_mat2Quat(quat, rotation.reshape(-1))
        rotvec = np.zeros(3)
        mujoco.mju_quat2Vel(rotvec, quat, 1.0)
        expected = np.zeros(3)
        expected[axis] = angle
        np.testing.assert_allclose(rotvec, expected, atol=2e-3, err_msg=coordinate)
