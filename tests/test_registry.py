"""The algorithm contract does not assume Flax: a Haiku algorithm runs through the same pipeline."""

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from offbench import registry
from offbench.errors import OffbenchError
from offbench.training import offline as pipeline
from offbench.training.prepare import RunOptions, prepare
from offbench.training.recording import finish


def make_haiku_bc(config, spec):
    """Deterministic behaviour cloning with a Haiku MLP (MSE to dataset actions)."""
    net = hk.without_apply_rng(hk.transform(lambda o: jnp.tanh(hk.nets.MLP([*config["hidden"], spec.act_dim])(o))))
    tx = optax.adam(config["lr"])

    def init(key):
        params = net.init(key, jnp.zeros((1, spec.obs_dim)))
        return {"params": params, "opt": tx.init(params)}

    def update(state, batch, key):
        def loss_fn(p):
            return jnp.mean((net.apply(p, batch["observations"]) - batch["actions"]) ** 2)

        loss, g = jax.value_and_grad(loss_fn)(state["params"])
        upd, opt = tx.update(g, state["opt"])
        return {"params": optax.apply_updates(state["params"], upd), "opt": opt}, {"bc_loss": loss}

    def act(state, obs, key, deterministic=True):
        return net.apply(state["params"], obs)

    return registry.Agent(init, update, act)


@pytest.fixture
def haiku_bc():
    registry.register(
        "haiku_bc",
        make=make_haiku_bc,
        default_config={"hidden": [32, 32], "lr": 1e-3},
        description="test-only Haiku BC",
    )
    yield "haiku_bc"
    registry.unregister("haiku_bc")


def test_haiku_algorithm_runs_through_the_pipeline(haiku_bc, hopper_file, tmp_path):
    opts = RunOptions(
        algo=haiku_bc,
        suite="locomotion",
        dataset=hopper_file,
        seeds=2,
        steps=400,
        eval_every=200,
        eval_episodes=1,
        overrides={"batch_size": 64, "log_every": 200},
        results=str(tmp_path),
        progress=False,
        resume=False,
    )
    prep = prepare(opts, say=lambda m: None)
    runner = pipeline.Run(prep, say=lambda m: None)
    states, keys = runner.init_states()
    book = runner.fresh()
    pipeline.begin_fresh(runner, book)

    # loss before training, on the whole dataset
    obs, act = prep.data["observations"], prep.data["actions"]
    net_loss = jax.vmap(
        lambda s: jnp.mean((make_haiku_bc({"hidden": [32, 32], "lr": 0}, prep.spec).act(s, obs, None) - act) ** 2)
    )
    before = np.asarray(net_loss(states))
    states, keys = pipeline.train_offline(runner, book, states, keys)
    after = np.asarray(net_loss(states))
    assert np.all(after < before * 0.9)  # it learned
    recs = finish(runner, book)
    assert [r["status"] for r in recs] == ["finished", "finished"]
    assert all(np.isfinite(r["final_score"]) for r in recs)
    assert recs[0]["metrics"]["bc_loss"] != recs[1]["metrics"]["bc_loss"]
    # the Haiku state checkpointed and restored through the generic checkpoint format
    from offbench.records import checkpoint

    tree, info = checkpoint.load(runner.ckpt_dir, {"states": states, "keys": keys})
    assert info["step"] == 400
    for a, b in zip(jax.tree_util.tree_leaves(tree["states"]), jax.tree_util.tree_leaves(states)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_unknown_algorithm_lists_known_ones():
    with pytest.raises(OffbenchError, match="known algorithms: .*iql"):
        registry.get("does-not-exist")


def test_entry_point_plugins_are_loaded(monkeypatch):
    """Third-party packages register through the entry-point group offbench.algorithms."""
    import importlib.metadata as md

    def loader():
        registry.register("plugin_algo", make=None, default_config={}, description="from a plug-in")

    ep = md.EntryPoint(name="plugin_algo", value="fake_offbench_plugin:register", group=registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(md.EntryPoint, "load", lambda self: loader())
    monkeypatch.setattr(
        registry.metadata, "entry_points", lambda group: [ep] if group == registry.ENTRY_POINT_GROUP else []
    )
    monkeypatch.setattr(registry, "_DISCOVERED", False)
    try:
        assert "plugin_algo" in registry.names()
        assert registry.get("plugin_algo").description == "from a plug-in"
    finally:
        registry.unregister("plugin_algo")
