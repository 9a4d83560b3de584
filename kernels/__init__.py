"""mmimic's Warp kernels (installed as `mmimic.kernels`): muscles, observations, rewards, resets."""
