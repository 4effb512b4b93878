"""offbench: offline RL benchmarks (IQL and its baselines) on one jit-compiled JAX pipeline.

The Python API (:mod:`offbench.api`, imported on first use so that ``import offbench`` stays cheap):
``offbench.run``, ``offbench.load_policy``, ``offbench.evaluate``, ``offbench.results``, ``offbench.runs``.
"""

import importlib

try:  # gymnasium-robotics prints a notice about the *Dense-v1 Adroit rewards at import; offbench uses none
    from farama_notifications import notifications as _notifications

    _notifications.pop("gymnasium_robotics", None)
except ImportError:  # pragma: no cover
    pass

__all__ = ["run", "load_policy", "evaluate", "results", "runs", "Policy"]


def __getattr__(name: str):
    if name in __all__:  # by name, not an import statement: the base package never depends on the stages above
        return getattr(importlib.import_module("offbench.api"), name)
    raise AttributeError(f"module 'offbench' has no attribute {name!r}")
