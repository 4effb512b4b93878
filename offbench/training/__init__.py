"""Stage 2: training on the device. Networks, losses, the scanned/vmapped train step, offline and online runs."""
