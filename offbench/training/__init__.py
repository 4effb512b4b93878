"""Training on the device: preparing a run, the scanned / vmapped train step, offline and online runs (the network
kit the algorithms build on is ``offbench.training.kit``)."""
