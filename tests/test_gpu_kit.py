"""The GPU kit (issue 27): benchmarks/gpu/{wheels.txt,prepare.sh,check.sh,check.py} and the anchors loaded from
their own checkouts (benchmarks/anchors/). The end-to-end smoke run is slow: OFFBENCH_SLOW_TESTS=1."""

from __future__ import annotations

import ast
import importlib.metadata as md
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
GPU = ROOT / "benchmarks" / "gpu"
sys.path.insert(0, str(ROOT / "benchmarks"))

import anchors  # noqa: E402
from anchors import shims  # noqa: E402

# What the GPU image has (DEVELOPERS.md, "The GPU machine"); their dependencies count as present too.
IMAGE = ("jax", "jaxlib", "flax", "optax", "h5py", "pandas", "scipy", "matplotlib", "pip")


def optional() -> set[str]:
    """Distributions of offbench's extras (ray, tensorboard, wandb, ...): imported only when asked for."""
    tomllib = pytest.importorskip("tomllib")
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    return {norm(re.split(r"[ ;<>=!~\[(]", r, maxsplit=1)[0]) for reqs in extras.values() for r in reqs}


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def wheel_pins() -> dict[str, str]:
    lines = [ln.split("#")[0].strip() for ln in (GPU / "wheels.txt").read_text().splitlines()]
    return {norm(p.split("==")[0]): p.split("==")[1] for p in lines if p}


def requires(dist: str) -> set[str]:
    """Runtime requirements of an installed distribution on Linux (extras and other platforms left out)."""
    from packaging.requirements import Requirement

    env = {"extra": "", "sys_platform": "linux", "platform_system": "Linux", "python_version": "3.12"}
    reqs = [Requirement(r) for r in md.requires(dist) or []]
    return {norm(r.name) for r in reqs if r.marker is None or r.marker.evaluate(env)}


def closure(names) -> set[str]:
    seen, todo = set(), [norm(n) for n in names]
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        try:
            todo += list(requires(n))
        except md.PackageNotFoundError:
            pass
    return seen


def offbench_imports() -> set[str]:
    mods = set()
    for folder in ("offbench", "algorithms"):
        for p in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(p.read_text())):
                if isinstance(node, ast.Import):
                    mods |= {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    mods.add(node.module.split(".")[0])
    return {m for m in mods if m not in sys.stdlib_module_names and m != "offbench"}


def test_wheels_cover_every_third_party_import_the_image_lacks():
    dists = md.packages_distributions()
    image, pins = closure(IMAGE), wheel_pins()
    for module in sorted(offbench_imports()):
        owners = {norm(d) for d in dists.get(module, [])} or {norm(module)}  # an extra may not be installed
        if owners & optional():
            continue
        assert owners & (image | set(pins)), f"{module} ({owners}) is neither in the GPU image nor in wheels.txt"


def test_wheels_are_the_tested_versions_and_their_requirements_are_met():
    pins, image = wheel_pins(), closure(IMAGE)
    left_out = norm((GPU / "wheels.txt").read_text().split("Left out", 1)[1])
    for name, version in pins.items():
        assert md.version(name) == version, f"wheels.txt pins {name}=={version}; the venv has {md.version(name)}"
        for req in requires(name) - image - set(pins) - {"setuptools"}:
            assert req in left_out, f"{name} requires {req}: add it or say why it is left out"


def test_prepare_and_check_scripts_parse_and_install_only_from_whl():
    for script in ("prepare.sh", "check.sh", "anchors.sh"):
        subprocess.run(["bash", "-n", str(GPU / script)], check=True)
    check = (GPU / "check.sh").read_text()
    assert "--no-index --no-deps --target" in check and ".whl/*.whl" in check
    prepare = (GPU / "prepare.sh").read_text()
    assert "--only-binary=:all: --python-version 3.12" in prepare and "wheels.txt" in prepare


# --------------------------------------------------------------------------------------------------
# anchors from a checkout: a stand-in with Unifloral's API (written here), imports included

STAND_IN = """
import os
from collections import namedtuple
from dataclasses import dataclass

import d4rl, distrax, gym, tyro, wandb  # the real file imports these at module level
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax.training.train_state import TrainState

os.environ["XLA_FLAGS"] = "--xla_gpu_triton_gemm_any=True"  # as Unifloral does

@dataclass
class Args:
    seed: int = 0
    batch_size: int = 16
    eval_interval: int = 5
    lr: float = 1e-3

AgentTrainState = namedtuple("AgentTrainState", "actor dual_q dual_q_target value")
Transition = namedtuple("Transition", "obs action reward next_obs done")

class TanhGaussianActor(nn.Module):
    num_actions: int
    obs_mean: jax.Array
    obs_std: jax.Array
    @nn.compact
    def __call__(self, x):
        mu = nn.tanh(nn.Dense(self.num_actions)(x - self.obs_mean))
        return distrax.Normal(mu, jnp.exp(self.param("logstd", nn.initializers.zeros, (self.num_actions,))))

class DualQNetwork(nn.Module):
    obs_mean: jax.Array
    obs_std: jax.Array
    @nn.compact
    def __call__(self, obs, action):
        return nn.Dense(2)(jnp.concatenate([obs, action], -1))

class StateValueFunction(nn.Module):
    obs_mean: jax.Array
    obs_std: jax.Array
    @nn.compact
    def __call__(self, x):
        return nn.Dense(1)(x).squeeze(-1)

def create_train_state(args, rng, network, dummy_input):
    return TrainState.create(apply_fn=network.apply, params=network.init(rng, *dummy_input), tx=optax.adam(args.lr))

def make_train_step(args, actor_apply_fn, q_apply_fn, value_apply_fn, dataset):
    def _train_step(runner_state, _):
        rng, agent = runner_state
        rng, key = jax.random.split(rng)
        idx = jax.random.randint(key, (args.batch_size,), 0, len(dataset.obs))
        b = jax.tree_util.tree_map(lambda x: x[idx], dataset)
        def loss(p):
            return -actor_apply_fn(p, b.obs).log_prob(b.action).sum(-1).mean()
        q_loss, g = jax.value_and_grad(loss)(agent.actor.params)
        return (rng, agent._replace(actor=agent.actor.apply_gradients(grads=g))), {"q_loss": q_loss}
    return _train_step
"""


@pytest.fixture()
def stand_in(tmp_path):
    (tmp_path / "algorithms").mkdir()
    (tmp_path / "algorithms" / "iql.py").write_text(textwrap.dedent(STAND_IN))
    return tmp_path


def test_anchor_runs_from_a_checkout_and_leaves_no_trace(stand_in, monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
    before = set(sys.modules)
    src = anchors.source_dir("unifloral", f"unifloral={stand_in}")
    rng = np.random.default_rng(0)
    data = {
        "observations": rng.normal(size=(64, 3)).astype(np.float32),
        "actions": rng.uniform(-0.5, 0.5, (64, 2)).astype(np.float32),
        "rewards": rng.normal(size=64).astype(np.float32),
        "next_observations": rng.normal(size=(64, 3)).astype(np.float32),
        "terminals": np.zeros(64, np.float32),
    }
    c = anchors.get("unifloral").make(data, src, batch_size=16)
    assert c.compile() > 0 and c.run(7) == 10  # two calls of its scan of eval_interval = 5
    assert (
        os.environ["XLA_FLAGS"] == "--xla_force_host_platform_device_count=1"
    )  # the file's own flag is not left behind
    leaked = {"d4rl", "distrax", "gym", "tyro", "wandb", "unifloral_iql"} & set(sys.modules) - before
    assert not leaked


def test_anchor_sources_resolve_in_order_and_say_how_to_fix(stand_in, monkeypatch, tmp_path):
    monkeypatch.setenv(anchors.ENV_VAR, f"unifloral={stand_in}")
    assert anchors.source_dir("unifloral") == stand_in
    assert anchors.source_dir("unifloral", f"unifloral={stand_in}") == stand_in
    with pytest.raises(anchors.AnchorMissing, match=r"clone https://github.com/nissymori/JAX-CORL at d747dd8"):
        anchors.source_dir("jaxcorl", f"jaxcorl={tmp_path / 'nowhere'}")
    with pytest.raises(ValueError, match="NAME=DIR"):
        anchors.parse_sources("unifloral")
    with pytest.raises(ValueError, match="NAME=DIR"):
        anchors.parse_sources("cql=/x")


def test_shimmed_normal_is_the_diagonal_gaussian_log_density():
    from scipy.stats import norm as gauss

    x, mu, sd = np.array([[0.3, -1.0]]), np.array([[0.1, 0.5]]), np.array([0.5, 2.0])
    np.testing.assert_allclose(shims.Normal(mu, sd).log_prob(x), gauss.logpdf(x, mu, sd), rtol=1e-5)
    np.testing.assert_allclose(
        shims.MultivariateNormalDiag(mu, sd).log_prob(x), gauss.logpdf(x, mu, sd).sum(-1), rtol=1e-5
    )


def test_check_dry_run_parses_every_stage_s_arguments(stand_in, monkeypatch, tmp_path):
    import importlib.util

    for p in ("hopper-tqc", "ant-expert"):
        (tmp_path / "policies").mkdir(exist_ok=True)
        (tmp_path / "policies" / f"{p}.npz").write_bytes(b"")
    monkeypatch.setenv("OFFBENCH_BEHAVIOR_DIR", str(tmp_path))
    monkeypatch.setenv(anchors.ENV_VAR, f"unifloral={stand_in}")
    spec = importlib.util.spec_from_file_location("offbench_gpu_check", GPU / "check.py")
    check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check)
    assert check.main(["--smoke", "--dry-run", "--out", str(tmp_path / "out")]) == 0
    plan = check.dry_run(check.FULL, 15, tmp_path)
    assert plan["throughput"]["seeds"] == "1,10" and plan["eval_speed"]["episodes"] == 100
    assert plan["eval_speed"]["backends"] == "host-parallel,mjx" and plan["unifloral_src"] == str(stand_in)


@pytest.mark.skipif(os.environ.get("OFFBENCH_SLOW_TESTS") != "1", reason="slow (minutes): OFFBENCH_SLOW_TESTS=1")
def test_check_smoke_runs_every_stage(stand_in, tmp_path):
    """check.py --smoke end to end in this venv (the .whl rehearsal is `bash benchmarks/gpu/check.sh --smoke`)."""
    import json

    env = {**os.environ, "OFFBENCH_ANCHOR_SRC": f"unifloral={stand_in}", "JAX_PLATFORMS": "cpu", "MPLBACKEND": "Agg"}
    cmd = [sys.executable, str(GPU / "check.py"), "--smoke", "--workers", "1", "--out", str(tmp_path)]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    res = json.loads((tmp_path / "check.json").read_text())
    assert res["throughput"]["unifloral"] and set(res["eval_speed"]["seconds"]) == {"host-parallel"}
    assert set(res["fidelity"]) >= {"hopper", "antmaze"} and res["fidelity"]["hopper"]["mjx_s"] > 0
    assert set(res["eval_share"]["suites"]) == {"antmaze", "locomotion"}
