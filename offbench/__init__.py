"""offbench: offline RL benchmarks (IQL and its baselines) on one jit-compiled JAX pipeline."""

try:  # gymnasium-robotics prints a notice about the *Dense-v1 Adroit rewards at import; offbench uses none
    from farama_notifications import notifications as _notifications

    _notifications.pop("gymnasium_robotics", None)
except ImportError:  # pragma: no cover
    pass
