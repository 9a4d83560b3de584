"""Networks (shapes, parameter counts, initialisation) and the PPO update on small synthetic problems."""

import math
import os
import tempfile

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from mmimic.ppo import PPO, ActorCritic, GatedResidualBlock, PPOConfig, RolloutStorage, linear_decay


def dense(i, o):
    return i * o + o


def mlp_count(in_dim, hidden, out_dim):
    """Hand count: Linear + LayerNorm (scale, bias) per hidden layer, then the output Linear."""
    count, dim = 0, in_dim
    for h in hidden:
        count += dense(dim, h) + 2 * h
        dim = h
    return count + dense(dim, out_dim)


def residual_count(in_dim, hidden, out_dim):
    """Hand count of the gated residual MLP: per pair two Linear+LN, a gate, a projection if the width changes."""
    count, dim = 0, in_dim
    for d0, d1 in zip(hidden[0::2], hidden[1::2]):
        count += dense(dim, d0) + 2 * d0 + dense(d0, d1) + 2 * d1 + 1 + (dense(dim, d1) if dim != d1 else 0)
        dim = d1
    if len(hidden) % 2:
        count += dense(dim, hidden[-1]) + 2 * hidden[-1]
        dim = hidden[-1]
    return count + dense(dim, out_dim)


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def test_bimanual_parameter_counts_match_hand_formula_and_reference():
    ac = ActorCritic(701, 126, [1024] * 4, [1024] * 4, init_std=0.2)
    actor = n_params(ac.actor) + ac.log_std.numel()
    critic = n_params(ac.critic)
    assert actor == mlp_count(701, [1024] * 4, 126) + 126 == 4_005_116
    assert critic == mlp_count(701, [1024] * 4, 1) == 3_876_865
    assert round(actor / 1e6, 2) == 4.01 and round(critic / 1e6, 2) == 3.88  # reference section 4.2
    # published fullbody counts through the same formulas (too slow to build in a unit test)
    resnet = [1408, 2688, 2688, 2688, 2688, 2688, 1408, 768, 384]
    assert round((residual_count(2418, resnet, 354) + 354) / 1e6, 2) == 50.01
    assert round(residual_count(2418, resnet, 1) / 1e6, 2) == 49.87
    assert round((mlp_count(2418, [1024] * 16, 354) + 354) / 1e6, 2) == 18.62


def test_residual_parameter_count_and_block_formula():
    hidden = [12, 20, 20, 20, 8, 6, 5]
    ac = ActorCritic(10, 3, hidden, hidden[:4], init_std=3.0, residual=True)
    assert n_params(ac.actor) == residual_count(10, hidden, 3)
    assert n_params(ac.critic) == residual_count(10, hidden[:4], 1)
    block = ac.actor.body[0]
    assert isinstance(block, GatedResidualBlock) and isinstance(ac.actor.body[1].skip, torch.nn.Identity)
    assert torch.sigmoid(block.gate).item() == pytest.approx(0.1192, abs=1e-4)
    x = torch.randn(4, 10)
    d0, ln0, _, d1, ln1 = block.inner
    f = torch.nn.functional
    h = f.silu(f.layer_norm(f.linear(x, d0.weight, d0.bias), (12,), ln0.weight, ln0.bias, 1e-5))
    h = f.layer_norm(f.linear(h, d1.weight, d1.bias), (20,), ln1.weight, ln1.bias, 1e-5)
    expected = f.silu(f.linear(x, block.skip.weight, block.skip.bias) + torch.sigmoid(block.gate) * h)
    torch.testing.assert_close(block(x), expected)


def test_initialisation_gains_and_log_std():
    ac = ActorCritic(40, 6, [32, 32], [32, 32], init_std=0.2)
    first, head = ac.actor.body[0], ac.actor.head
    # orthogonal with gain g: the smaller Gram matrix is g^2 I
    torch.testing.assert_close(first.weight @ first.weight.T, 2.0 * torch.eye(32), atol=1e-5, rtol=0)  # [32, 40]
    torch.testing.assert_close(head.weight @ head.weight.T, 1e-4 * torch.eye(6), atol=1e-8, rtol=0)
    assert all(float(m.bias.detach().abs().max()) == 0.0 for m in ac.modules() if isinstance(m, torch.nn.Linear))
    ln = ac.actor.body[1]
    assert isinstance(ln, torch.nn.LayerNorm) and ln.eps == 1e-5
    torch.testing.assert_close(ac.log_std, torch.full((6,), math.log(0.2)))
    torch.manual_seed(0)
    actions, _, _, mean = ac.act(torch.randn(20000, 40), update_normalizer=True)
    assert (actions - mean).std().item() == pytest.approx(0.2, rel=0.02)


def test_log_prob_entropy_match_torch_distributions_and_normaliser_updates_first():
    torch.manual_seed(1)
    ac = ActorCritic(5, 3, [16], [16], init_std=0.7)
    with torch.no_grad():
        ac.log_std.copy_(torch.tensor([-0.3, 0.1, 0.5]))
    obs = torch.randn(64, 5) * 3 + 1
    actions, log_probs, values, mean = ac.act(obs, update_normalizer=True)
    assert ac.obs_normalizer.count.item() == pytest.approx(64, abs=1e-5)
    x = (obs - obs.mean(0)) / torch.sqrt(obs.var(0, correction=0) + 1e-6 + 1e-8)
    torch.testing.assert_close(mean, ac.actor(x), atol=1e-5, rtol=1e-4)
    normal = torch.distributions.Normal(mean, torch.exp(ac.log_std))
    torch.testing.assert_close(log_probs, normal.log_prob(actions).sum(-1))
    lp, ent, v = ac.evaluate(obs, actions)
    torch.testing.assert_close(lp, log_probs)
    torch.testing.assert_close(ent, normal.entropy().sum(-1))
    torch.testing.assert_close(v, values)
    torch.testing.assert_close(ac.policy()(obs), mean)
    assert ac.obs_normalizer.count.item() == pytest.approx(64, abs=1e-5)  # evaluate / policy do not update


def bandit_rollout(ac, num_envs=64, num_steps=4, obs_dim=6):
    """One-step episodes; reward +1 when the first action component exceeds the mean, else -1."""
    storage = RolloutStorage(num_steps, num_envs, obs_dim, ac.architecture["act_dim"], "cpu")
    for _ in range(num_steps):
        obs = torch.randn(num_envs, obs_dim)
        actions, log_probs, values, _ = ac.act(obs, update_normalizer=True)
        rewards = torch.where(actions[:, 0] > 0.0, 1.0, -1.0)
        done = torch.ones(num_envs, dtype=torch.bool)
        storage.add(obs, actions, log_probs, values, rewards, done, done)
    storage.compute_gae(torch.zeros(num_envs), 0.99, 0.95)
    return storage


@pytest.mark.parametrize("optimizer", ["muon", "adam"])
def test_update_increases_log_prob_of_advantageous_actions(optimizer):
    torch.manual_seed(2)
    ac = ActorCritic(6, 2, [32, 32], [32, 32], init_std=0.5)
    ppo = PPO(ac, PPOConfig(num_minibatches=4, lr=3e-3, optimizer=optimizer, muon_weight_decay=0.0), "cpu")
    storage = bandit_rollout(ac)
    obs, actions, adv = storage.obs.view(-1, 6), storage.actions.view(-1, 2), storage.advantages.view(-1)
    old_lp = storage.log_probs.view(-1)
    first_value_loss = None
    for it in range(5):
        stats = ppo.update(storage, it)
        first_value_loss = first_value_loss or stats["loss/value"]
    assert stats["skipped"] == 0 and stats["lr"] == 3e-3
    with torch.no_grad():
        new_lp, _, _ = ac.evaluate(obs, actions)
    assert (adv * (new_lp - old_lp)).mean().item() > 0
    assert (new_lp - old_lp)[adv > 0].mean() > (new_lp - old_lp)[adv < 0].mean()
    assert stats["loss/value"] < first_value_loss
    assert set(stats) >= {"loss/actor", "approx_kl", "clip_fraction", "explained_variance", "std_mean", "skipped", "lr"}


def test_training_on_bandit_moves_policy_mean():
    torch.manual_seed(3)
    ac = ActorCritic(6, 2, [32, 32], [32, 32], init_std=0.5)
    ppo = PPO(ac, PPOConfig(num_minibatches=4, lr=3e-3), "cpu")
    probe = torch.randn(256, 6)
    before = ac.policy()(probe)[:, 0].mean().item()
    for it in range(15):
        ppo.update(bandit_rollout(ac), it)
    assert ac.policy()(probe)[:, 0].mean().item() > before + 0.1


def test_non_finite_loss_and_gradient_are_skipped_and_counted():
    torch.manual_seed(4)
    ac = ActorCritic(6, 2, [16], [16], init_std=0.5)
    ppo = PPO(ac, PPOConfig(num_minibatches=4), "cpu")
    storage = bandit_rollout(ac)
    before = [p.detach().clone() for p in ac.parameters()]
    state_before = ppo.optimizer.state_dict()

    storage.rewards.fill_(float("nan"))
    storage.compute_gae(torch.zeros(64), 0.99, 0.95)
    stats = ppo.update(storage, 0)
    assert stats["skipped"] == 4
    assert all(torch.equal(a, b) for a, b in zip(before, ac.parameters()))
    after = ppo.optimizer.state_dict()
    assert torch.equal(after["parts"]["adam"]["exp_avg"], state_before["parts"]["adam"]["exp_avg"])
    assert after["parts"]["muon"]["step"].item() == 0

    storage.rewards.fill_(1.0)
    storage.rewards[0, 0] = float("inf")  # poisons exactly one minibatch
    storage.compute_gae(torch.zeros(64), 0.99, 0.95)
    stats = ppo.update(storage, 0)
    assert stats["skipped"] == 1 and math.isfinite(stats["loss/total"])
    assert all(torch.isfinite(p).all() for p in ac.parameters())
    assert ppo.optimizer.state_dict()["parts"]["muon"]["step"].item() == 3

    storage.rewards.fill_(1.0)
    storage.compute_gae(torch.zeros(64), 0.99, 0.95)
    handle = ac.actor.head.weight.register_hook(lambda g: torch.full_like(g, float("nan")))
    stats = ppo.update(storage, 0)  # finite loss, non-finite gradient
    handle.remove()
    assert stats["skipped"] == 4 and ppo.optimizer.state_dict()["parts"]["muon"]["step"].item() == 3


def test_learning_rate_schedule():
    ac = ActorCritic(4, 2, [8], [8], init_std=3.0)
    annealed = PPO(ac, PPOConfig(anneal_lr=True, lr=4e-4), "cpu", num_updates=12500)
    assert annealed.learning_rate(3125) == pytest.approx(4e-4 * linear_decay(3125, 12500)) == pytest.approx(3e-4)
    assert PPO(ac, PPOConfig(lr=4e-4), "cpu").learning_rate(24999) == 4e-4


def _distributed_update_worker(rank, world_size, init_file, out_dir):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        torch.manual_seed(0)  # identical initial weights
        ac = ActorCritic(6, 2, [16], [16], init_std=0.5)
        ac.obs_normalizer.enable_all_reduce()
        ppo = PPO(ac, PPOConfig(num_minibatches=2, lr=1e-2), "cpu")
        torch.manual_seed(100 + rank)  # different rollouts per rank
        ppo.update(bandit_rollout(ac, num_envs=16, num_steps=2), 0)
        torch.save({k: v.clone() for k, v in ac.state_dict().items()}, os.path.join(out_dir, f"{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_distributed_update_keeps_ranks_identical():
    with tempfile.TemporaryDirectory() as tmp:
        mp.spawn(_distributed_update_worker, args=(2, os.path.join(tmp, "init"), tmp), nprocs=2, join=True)
        states = [torch.load(os.path.join(tmp, f"{r}.pt"), weights_only=True) for r in range(2)]
    torch.manual_seed(0)
    initial = ActorCritic(6, 2, [16], [16], init_std=0.5).state_dict()
    assert not torch.equal(states[0]["actor.head.weight"], initial["actor.head.weight"])
    for key in states[0]:
        assert torch.equal(states[0][key], states[1][key]), key
