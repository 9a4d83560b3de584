"""Training: configuration presets, the PPO training loop, run logging."""
