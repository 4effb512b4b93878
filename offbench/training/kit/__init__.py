"""The network kit the algorithms build on: MLPs and policy heads (``networks``), shared losses (``losses``), the
train state (``train_state``). Pure JAX/Flax; it imports nothing else from offbench."""
