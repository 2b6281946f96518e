"""Many runs: grids, the ablation runner, reports with their figures, and the forensics of the gap
to the paper. Built on `cvgad.experiment`."""
