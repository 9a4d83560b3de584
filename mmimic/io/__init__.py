"""Readers for experimental motion and gait data: OpenSim tables (`opensim`), marker trials
(`trc`, `c3d`, as `markers.MarkerTrial`) and C3D force plates (`c3d.read_force_plates`); atomic
file writes (`atomic`)."""
