# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # One CVGAD run
#
# The lab record of a single training run: `cvgad ablate` executes this notebook with
# [papermill](https://papermill.readthedocs.io), once per (row, seed) of an ablation grid, and keeps
# the executed copy (`executed.ipynb`) beside the run's `metrics.json`. Run it by hand to try one
# configuration; the defaults below are a tiny digits run that takes about a minute on a CPU.

# %% tags=["parameters"]
# Any field of cvgad.experiment.params.RunParams can be set here or with papermill (-p NAME VALUE); those not
# set take RunParams' defaults. These make a tiny digits run for trying the notebook by hand.
epochs = 1
train_subset = 300  # cap on training images (None: all)
test_subset = 300  # cap on test images (None: all)
width = 16
latent_dim = 32
out_dir = "runs/notebook"
threads = None  # torch threads (the runner sets this so that parallel runs share the cores)

# %%
import json
import platform

import pandas as pd
import torch

from cvgad.experiment.experiment import run_experiment
from cvgad.experiment.params import RunParams

if threads:
    torch.set_num_threads(threads)
params = RunParams.from_mapping(globals())
cfg = params.config()
print(f"python {platform.python_version()}, torch {torch.__version__}, {torch.get_num_threads()} threads")
print(json.dumps(cfg.to_dict(), indent=1))

# %% [markdown]
# Train, then score the test set. `run_experiment` writes `config.json`, `history.csv`,
# `checkpoint.pt` and, last and atomically, `metrics.json` into `out_dir`.

# %%
result = run_experiment(cfg, out_dir=out_dir, progress=False)

# %% [markdown]
# The metrics. `f1_best` is the paper's F1 (the best over all thresholds, chosen on the test set,
# so optimistic); `f1_val` uses a threshold fixed on normal validation images; `f1_floor` is the F1
# of flagging every test image as anomalous.

# %%
pd.Series(result.metrics, name="value").to_frame()

# %%
# an untrained run (epochs = 0) has no training steps and so an empty history
result.history.tail() if len(result.history) else print("epochs = 0: no training steps, no history")
