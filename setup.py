"""Installs the `mmimic` package and, from the top-level `kernels/` directory, `mmimic.kernels`."""

from setuptools import find_packages, setup

setup(
    name="mmimic",
    version="0.1.0",
    description="Motion imitation for muscle-driven human models on NVIDIA Warp and PyTorch",
    python_requires=">=3.11",
    packages=find_packages(include=["mmimic", "mmimic.*"]) + ["mmimic.kernels"],
    package_dir={"mmimic": "mmimic", "mmimic.kernels": "kernels"},
    package_data={"mmimic": ["data/*.json"]},
    install_requires=[
        "torch>=2.9",
        "numpy>=1.26",
        "scipy>=1.11",
        # The physics stack is pinned: mujoco_warp's kernels and MuJoCo C must agree.
        "warp-lang==1.19.0",
        "mujoco==4.0.0",
        "mujoco-warp==4.0.0",
        "musclemimic-models==1.0.6",
        "smplx>=0.1.28",
        "tensorboard>=2.15",
        "rich>=13",
        "ezc3d>=1.7",  # C3D markers and force plates (mmimic.io.c3d), tested with 1.7.2
        "matplotlib>=3.8",
        "imageio>=2.31",
        "imageio-ffmpeg>=0.5",
    ],
    extras_require={"test": ["pytest>=8", "ruff==0.17.6"]},
)
