"""One experiment: run parameters, data, split protocols, one run end to end, its run folder and
the epoch selection. Built on `cvgad.model`."""
