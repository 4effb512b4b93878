"""Runtime shims that let the anchors' own files (a checkout, never copied here) import and run today.

The anchors' training scripts import, at module level, libraries their *update* never touches (d4rl, gym,
wandb, tyro, omegaconf, tensorboardX) and two distribution libraries it does use (distrax, TensorFlow
Probability) that are not dependencies of offbench and no longer install beside current JAX. ``load``
executes an anchor's file with stand-ins for those modules in ``sys.modules`` (removed again afterwards):

* unused libraries are empty modules (``omegaconf.OmegaConf.from_cli`` returns no overrides, so JAX-CORL's
  module-level config is its defaults whatever ``sys.argv`` holds);
* ``distrax`` / ``tensorflow_probability.substrates.jax``: the diagonal Normal's log-density and sample
  written out (the same formula; the update's cost is unchanged);
* ``pydantic.BaseModel`` only where pydantic is not installed: fields from the class annotations.

Scripts that set ``os.environ["XLA_FLAGS"]`` at import (Unifloral, JAX-CORL: ``--xla_gpu_triton_gemm_any``)
get the caller's value back: in one benchmark process every contestant runs under the same XLA flags.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import inspect
import math
import os
import sys
import types
from pathlib import Path

LOG_2PI = math.log(2 * math.pi)


class Normal:
    """Elementwise N(loc, scale) (distrax.Normal): ``log_prob`` per component, ``sample(seed=key)``."""

    def __init__(self, loc, scale):
        self.loc, self.scale = loc, scale

    def log_prob(self, x):
        import jax.numpy as jnp

        z = (x - self.loc) / self.scale
        return -0.5 * z**2 - jnp.log(self.scale) - 0.5 * LOG_2PI

    def sample(self, seed, sample_shape=()):
        import jax

        shape = tuple(sample_shape) + jax.numpy.shape(self.loc)
        return self.loc + self.scale * jax.random.normal(seed, shape)

    def mode(self):
        return self.loc


class MultivariateNormalDiag(Normal):
    """distrax.MultivariateNormalDiag / tfd.MultivariateNormalDiag: the log-density summed over the last axis."""

    def __init__(self, loc, scale_diag):
        super().__init__(loc, scale_diag)

    def log_prob(self, x):
        return super().log_prob(x).sum(-1)


class Deterministic:
    def __init__(self, loc):
        self.loc = loc

    def sample(self, seed, sample_shape=()):
        return self.loc

    def mode(self):
        return self.loc


class Tanh:
    """tfb.Tanh, only as a marker: the anchors' IQL actors never build the squashed distribution."""


class TransformedDistribution:
    def __init__(self, distribution, bijector):
        raise NotImplementedError("tanh-squashed distributions are not shimmed (IQL's actors do not use them)")


class BaseModel:
    """pydantic.BaseModel's part JAX-CORL uses: keyword fields with class defaults, repr, equality."""

    def __init__(self, **kwargs):
        fields = {}
        for klass in reversed(type(self).__mro__):
            fields.update(getattr(klass, "__annotations__", {}))
        unknown = set(kwargs) - set(fields)
        if unknown:
            raise TypeError(f"unknown fields {sorted(unknown)}")
        for name in fields:
            setattr(self, name, kwargs.get(name, getattr(type(self), name, None)))
        self._fields = tuple(fields)

    def __repr__(self):
        return f"{type(self).__name__}(" + ", ".join(f"{k}={getattr(self, k)!r}" for k in self._fields) + ")"

    def __eq__(self, other):
        return type(self) is type(other) and repr(self) == repr(other)

    def __hash__(self):
        return hash(repr(self))


class _Anything(type):
    """Metaclass of the placeholders: every attribute is another placeholder (``gym.spaces.Box``)."""

    def __getattr__(cls, name):
        return _placeholder(name)


def _placeholder(name: str):
    """Any other attribute of a stand-in: a bare class (for annotations such as ``gym.Env`` at def time)."""
    if name.startswith("__"):
        raise AttributeError(name)
    return _Anything(name, (), {})


def _module(name: str, **attrs) -> types.ModuleType:
    m = types.ModuleType(name)
    m.__dict__.update(attrs)
    m.__shim__ = True
    m.__getattr__ = _placeholder  # PEP 562: consulted only for names not set above
    return m


def stand_ins() -> dict[str, types.ModuleType]:
    """Module name -> stand-in, for everything the anchors import but need not (or cannot) have."""
    omega = _module("omegaconf", OmegaConf=types.SimpleNamespace(from_cli=lambda *a: {}))
    distrax = _module(
        "distrax", Normal=Normal, MultivariateNormalDiag=MultivariateNormalDiag, Deterministic=Deterministic
    )
    distrax.Distribution = object
    tfd = _module(
        "tensorflow_probability.substrates.jax.distributions",
        MultivariateNormalDiag=MultivariateNormalDiag,
        Normal=Normal,
        TransformedDistribution=TransformedDistribution,
        Distribution=object,
    )
    tfb = _module("tensorflow_probability.substrates.jax.bijectors", Tanh=Tanh)
    tfp_jax = _module("tensorflow_probability.substrates.jax", distributions=tfd, bijectors=tfb)
    tfp = _module("tensorflow_probability", substrates=_module("tensorflow_probability.substrates", jax=tfp_jax))
    mods = {
        "d4rl": _module("d4rl"),
        "gym": _module("gym"),
        "wandb": _module("wandb"),
        "tyro": _module("tyro"),
        "tensorboardX": _module("tensorboardX", SummaryWriter=object),
        "omegaconf": omega,
        "distrax": distrax,
        "tensorflow_probability": tfp,
        "tensorflow_probability.substrates": tfp.substrates,
        "tensorflow_probability.substrates.jax": tfp_jax,
        "tensorflow_probability.substrates.jax.distributions": tfd,
        "tensorflow_probability.substrates.jax.bijectors": tfb,
    }
    if importlib.util.find_spec("pydantic") is None:
        mods["pydantic"] = _module("pydantic", BaseModel=BaseModel)
    if importlib.util.find_spec("tqdm") is None:
        mods["tqdm"] = _module("tqdm", tqdm=lambda it, *a, **k: it)
    return mods


@contextlib.contextmanager
def patched_modules(extra: dict[str, types.ModuleType]):
    """``extra`` in ``sys.modules`` for the block; whatever was there before (or nothing) afterwards."""
    saved = {k: sys.modules.get(k) for k in extra}
    xla = os.environ.get("XLA_FLAGS")
    sys.modules.update(extra)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
        if xla is None:
            os.environ.pop("XLA_FLAGS", None)
        else:
            os.environ["XLA_FLAGS"] = xla


def _lenient_jit(fun=None, **kw):
    """``jax.jit`` that drops ``static_argnames`` the function does not have (JAX once warned; now it raises)."""
    jax = importlib.import_module("jax") if _REAL_JAX is None else _REAL_JAX
    if fun is None:
        return functools.partial(_lenient_jit, **kw)
    names = kw.get("static_argnames")
    if names:
        params = inspect.signature(fun).parameters
        kw["static_argnames"] = tuple(n for n in ([names] if isinstance(names, str) else names) if n in params)
    return jax.jit(fun, **kw)


_REAL_JAX = None


def old_jax() -> types.ModuleType:
    """``jax`` as 2021 code expects it: ``jax.tree_multimap`` (removed in 0.3.16) and a lenient ``jax.jit``;
    everything else is the installed JAX."""
    global _REAL_JAX
    import jax

    _REAL_JAX = jax
    shim = types.ModuleType("jax")
    shim.__getattr__ = lambda name: getattr(jax, name)  # PEP 562
    shim.tree_multimap = jax.tree_util.tree_map
    shim.jit = _lenient_jit
    return shim


def load(root: Path, files: dict[str, str], overrides: dict | None = None) -> dict[str, types.ModuleType]:
    """Execute ``files`` (module name -> path under ``root``) in order, with the stand-ins (and ``overrides``,
    e.g. ``{"jax": old_jax()}``) and with each other importable by their top-level names; returns the modules,
    none of which stays in ``sys.modules``."""
    for lib in ("jax", "jax.numpy", "flax", "flax.linen", "flax.training.train_state", "optax"):
        importlib.import_module(lib)  # imported for real before any stand-in is in place
    loaded: dict[str, types.ModuleType] = {}
    with patched_modules({**stand_ins(), **(overrides or {}), **{n: _module(n) for n in files}}):
        for name, rel in files.items():
            path = Path(root) / rel
            spec = importlib.util.spec_from_file_location(name, path)
            mod = importlib.util.module_from_spec(spec)
            sys.modules[name] = mod  # the next files import this one by name
            spec.loader.exec_module(mod)
            loaded[name] = mod
    return loaded
