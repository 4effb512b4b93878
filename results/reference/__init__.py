"""Published reference numbers (CSV, with sources), installed as ``offbench.reference``."""
