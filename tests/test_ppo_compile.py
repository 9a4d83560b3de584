"""The compiled PPO minibatch step (`ppo.compile`): same update as the eager one, fewer operators."""

import os
import tempfile

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch._inductor import config as inductor_config

from mmimic.bench import step_ops
from mmimic.ppo import PPO, ActorCritic, Minibatch, PPOConfig
from mmimic.ppo.ppo import compile_enabled
from mmimic.train.config import ConfigError, resolve_config

OBS, ACT, BATCH = 12, 5, 32


def _ppo(compile_setting: str, device: str = "cpu") -> PPO:
    torch.manual_seed(3)
    net = ActorCritic(OBS, ACT, [24, 24, 24], [24, 24, 24], init_std=0.5)
    return PPO(net, PPOConfig(anneal_lr=True, muon_weight_decay=1e-3, compile=compile_setting), device,
               num_updates=10)


def _batches(count: int, device: str = "cpu") -> list[Minibatch]:
    gen = torch.Generator().manual_seed(1)
    return [Minibatch(*(x.to(device) for x in (
        torch.randn(BATCH, OBS, generator=gen), torch.randn(BATCH, ACT, generator=gen),
        -torch.rand(BATCH, generator=gen) * 5, torch.randn(BATCH, generator=gen),
        torch.randn(BATCH, generator=gen), torch.randn(BATCH, generator=gen)))) for _ in range(count)]


def test_compile_setting_defaults_to_cuda_only():
    assert not compile_enabled("auto", torch.device("cpu"))
    assert compile_enabled("auto", torch.device("cuda", 1))
    assert compile_enabled("on", torch.device("cpu")) and not compile_enabled("off", torch.device("cuda"))
    eager = _ppo("auto")
    assert not eager.compiled and eager.minibatch_step == eager._step
    with pytest.raises(ValueError, match="ppo.compile must be 'auto', 'on' or 'off', got 'yes'"):
        compile_enabled("yes", torch.device("cpu"))
    with pytest.raises(ConfigError, match="ppo.compile must be"):
        resolve_config("bimanual", "cpu", overrides=["ppo.compile=always"])


@pytest.mark.slow
def test_compiled_step_matches_eager_and_dispatches_fewer_ops():
    """Five minibatches with an annealed learning rate (changed between steps without recompiling) and a
    non-finite minibatch skipped on the device: the compiled update leaves the parameters and optimiser
    state the eager one does, up to float32 reassociation; and it dispatches far fewer operators."""
    eager, compiled = _ppo("off"), _ppo("on")
    compile_profiled = inductor_config.patch({"cpp.enable_kernel_profile": True})  # names the generated kernels
    batches = _batches(5)
    batches[2] = batches[2]._replace(obs=batches[2].obs.clone().index_fill_(0, torch.tensor([4]), torch.nan))
    graphs = torch._dynamo.utils.counters["stats"]
    for k, batch in enumerate(batches):
        for ppo in (eager, compiled):
            ppo.optimizer.lr = ppo.learning_rate(k)
        stats_e, ok_e = eager.minibatch_step(batch)
        with compile_profiled:
            stats_c, ok_c = compiled.minibatch_step(batch)
        assert bool(ok_e) == bool(ok_c) == (k != 2)
        if k == 0:
            compiled_graphs = graphs["unique_graphs"]
        if k != 2:
            torch.testing.assert_close(stats_c, stats_e, rtol=1e-4, atol=1e-5)
    assert graphs["unique_graphs"] == compiled_graphs  # compiled once: no recompilation per learning rate
    for p_e, p_c in zip(eager.optimizer.params, compiled.optimizer.params, strict=True):
        torch.testing.assert_close(p_c.detach(), p_e.detach(), rtol=1e-4, atol=1e-5)
    state_e, state_c = eager.optimizer.state_dict(), compiled.optimizer.state_dict()
    torch.testing.assert_close(state_c["parts"], state_e["parts"], rtol=1e-4, atol=1e-5)
    assert float(state_c["parts"]["muon"]["step"]) == 4.0

    ops_eager = step_ops(eager, batches[0])
    with compile_profiled:
        ops_compiled = step_ops(compiled, batches[0])
    assert ops_eager["generated"] == 0 and ops_compiled["generated"] > 0
    assert ops_compiled["minibatch"] * 2 < ops_eager["minibatch"]  # 116 vs 342 measured: 3 layers leave little to fuse


def _distributed_worker(rank: int, init_file: str, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        for setting in ("on", "off"):
            ppo = _ppo(setting)
            for k, batch in enumerate(_batches(6)[rank::2]):  # different minibatches per rank
                ppo.optimizer.lr = ppo.learning_rate(k)
                ppo.minibatch_step(batch)
            torch.save([p.detach().clone() for p in ppo.optimizer.params], os.path.join(out_dir, f"{setting}{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_compiled_distributed_step_keeps_ranks_identical_and_equals_eager():
    """Under torch.distributed (gloo, 2 ranks), the compiled step averages the gradients like the eager one."""
    with tempfile.TemporaryDirectory() as tmp:
        mp.spawn(_distributed_worker, args=(os.path.join(tmp, "init"), tmp), nprocs=2, join=True)
        params = {name: torch.load(os.path.join(tmp, f"{name}.pt"), weights_only=True) for name in ("on0", "on1", "off0")}
    for p_on0, p_on1, p_off in zip(params["on0"], params["on1"], params["off0"], strict=True):
        assert torch.equal(p_on0, p_on1)
        torch.testing.assert_close(p_on0, p_off, rtol=1e-4, atol=1e-5)


@pytest.mark.cuda
def test_compiled_step_matches_eager_on_cuda():
    """`auto` compiles on CUDA (inductor's Triton kernels); three minibatches match the eager step."""
    eager, compiled = _ppo("off", "cuda"), _ppo("auto", "cuda")
    assert compiled.compiled
    for k, batch in enumerate(_batches(3, "cuda")):
        for ppo in (eager, compiled):
            ppo.optimizer.lr = ppo.learning_rate(k)
        _, ok_e = eager.minibatch_step(batch)
        _, ok_c = compiled.minibatch_step(batch)
        assert bool(ok_e) and bool(ok_c)
    for p_e, p_c in zip(eager.optimizer.params, compiled.optimizer.params, strict=True):
        torch.testing.assert_close(p_c.detach(), p_e.detach(), rtol=1e-3, atol=1e-4)
