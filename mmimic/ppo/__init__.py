"""PPO learner: networks, observation / reward normalisation, rollout storage, optimisers, update."""

from mmimic.ppo.networks import MLP, ActorCritic, GatedResidualBlock, GatedResidualMLP, Policy, gaussian_log_prob
from mmimic.ppo.normalizer import ReturnNormalizer, RunningMeanStd, all_reduce_moments
from mmimic.ppo.optim import Adam, HybridOptimizer, Muon, build_optimizer, linear_decay, newton_schulz
from mmimic.ppo.ppo import PPO, PPOConfig, all_reduce_gradients, explained_variance
from mmimic.ppo.storage import Minibatch, RolloutStorage

__all__ = [
    "MLP",
    "PPO",
    "ActorCritic",
    "Adam",
    "GatedResidualBlock",
    "GatedResidualMLP",
    "HybridOptimizer",
    "Minibatch",
    "Muon",
    "PPOConfig",
    "Policy",
    "ReturnNormalizer",
    "RolloutStorage",
    "RunningMeanStd",
    "all_reduce_gradients",
    "all_reduce_moments",
    "build_optimizer",
    "explained_variance",
    "gaussian_log_prob",
    "linear_decay",
    "newton_schulz",
]
