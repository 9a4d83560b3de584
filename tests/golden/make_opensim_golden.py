"""Golden leg-muscle paths from OpenSim: lengths and moment arms of the right-leg muscles of the
Rajagopal-family model `subject_walk_scaled.osim` while hip flexion, knee angle and ankle angle
are swept one at a time from the default pose (every other coordinate at its default).

    python tests/golden/make_opensim_golden.py ../shared/data/opensim_moco_walk/subject_walk_scaled.osim

writes `mmimic/data/opensim_leg_paths.json` (needs `pip install opensim`; the tests do not),
with the segment sizes (hip width, hip-knee and knee-ankle joint-centre distances).
The sweeps and muscles are `mmimic.anatomy.SWEEPS` and `mmimic.anatomy.LEG_MUSCLES`; moment arms
follow OpenSim's sign (-dL/dq), and coupled coordinates (the patella) follow their constraints.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import opensim

from mmimic.anatomy import LEG_MUSCLES, SWEEPS

OUT = Path(__file__).resolve().parents[2] / "mmimic" / "data" / "opensim_leg_paths.json"


def sweep(model_path: Path) -> dict:
    model = opensim.Model(str(model_path))
    state = model.initSystem()
    coords = model.getCoordinateSet()
    defaults = {coords.get(i).getName(): coords.get(i).getDefaultValue() for i in range(coords.getSize())}
    muscles = model.getMuscles()
    missing = [m for m in LEG_MUSCLES if muscles.getIndex(m) < 0]
    if missing:
        raise SystemExit(f"{model_path}: the model lacks the muscles {', '.join(missing)}")
    result: dict = {"model": model_path.name, "opensim": opensim.__version__, "sweeps": {}}
    model.realizePosition(state)
    centre = {joint: np.array(model.getJointSet().get(joint).getChildFrame().getPositionInGround(state).to_numpy())
              for joint in ("hip_r", "hip_l", "walker_knee_r", "ankle_r")}
    result["segments"] = {  # the sizes `mmimic.anatomy.SEGMENT_OF` normalises by, neutral pose
        "pelvis": float(np.linalg.norm(centre["hip_r"] - centre["hip_l"])),
        "femur": float(np.linalg.norm(centre["walker_knee_r"] - centre["hip_r"])),
        "tibia": float(np.linalg.norm(centre["ankle_r"] - centre["walker_knee_r"])),
    }
    for joint, degrees in SWEEPS.items():
        lengths, arms = [], []
        for value in np.radians(degrees):
            for name, default in defaults.items():
                coords.get(name).setValue(state, default, False)
            coords.get(joint).setValue(state, float(value))  # assembles: coupled coordinates follow
            model.realizePosition(state)
            lengths.append([muscles.get(m).getLength(state) for m in LEG_MUSCLES])
            arms.append([muscles.get(m).computeMomentArm(state, coords.get(joint)) for m in LEG_MUSCLES])
        result["sweeps"][joint] = {
            "degrees": list(degrees),
            "length": np.round(np.array(lengths).T, 6).tolist(),
            "moment_arm": np.round(np.array(arms).T, 6).tolist(),
        }
    result["muscles"] = list(LEG_MUSCLES)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="the .osim file (subject_walk_scaled.osim)")
    args = parser.parse_args()
    if not args.model.is_file():
        raise SystemExit(f"{args.model}: no such .osim file")
    data = sweep(args.model)
    fd, tmp = tempfile.mkstemp(dir=OUT.parent, suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1)
    os.chmod(tmp, 0o644)
    os.replace(tmp, OUT)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
