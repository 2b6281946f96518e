"""The paper: configs, networks (Fig. 1), losses (Section II), Algorithm 1 and the baselines'
trainers, and the anomaly score (II.F). Imports nothing else of cvgad but `cvgad.atomic`."""
