"""Evaluation against experimental data: gait events, gait-cycle normalisation, curve
comparison, and name mappings from OpenSim gait data to the MuJoCo bodies."""
