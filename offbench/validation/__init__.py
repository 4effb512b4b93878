"""``offbench validate``: the IQL paper's qualitative claims as runs, criteria and verdicts (issue 17).

A protocol file (``configs/validation/<tier>.yaml``) names run groups (each a sweep: algorithms x datasets at one
run length) and claims (algorithm A against B on some datasets, with a relation). The groups run through the
sweep machinery (idempotent: finished runs are skipped, unfinished ones resume); the verdicts come from the
records alone: exact permutation tests with stated margins (``rules.py``, ``verdicts.py``; issue 28), with rliable's
IQM and probability of improvement under stratified-bootstrap 95% CIs for the figures."""
