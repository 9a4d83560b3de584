"""PPO learner: networks, observation / reward normalisation, rollout storage, optimisers, update."""

from mmimic.ppo.networks import ActorCritic, GatedResidualBlock
from mmimic.ppo.normalizer import ReturnNormalizer, RunningMeanStd
from mmimic.ppo.optim import Adam, Muon, build_optimizer, linear_decay, newton_schulz
from mmimic.ppo.ppo import PPO, PPOConfig
from mmimic.ppo.storage import Minibatch, RolloutStorage

__all__ = [
    "PPO",
    "ActorCritic",
    "Adam",
    "GatedResidualBlock",
    "Minibatch",
    "Muon",
    "PPOConfig",
    "ReturnNormalizer",
    "RolloutStorage",
    "RunningMeanStd",
    "build_optimizer",
    "linear_decay",
    "newton_schulz",
]
