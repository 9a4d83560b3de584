"""Readers for experimental motion and gait data (OpenSim tables)."""
