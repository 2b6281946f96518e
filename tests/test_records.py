"""What a record says of its making (provenance) and what it keeps (per-image scores)."""

import json
import re
from pathlib import Path

import torch

from cvgad.experiment import runs
from cvgad.experiment.experiment import run_experiment
from cvgad.experiment.params import make_config

REPO = Path(__file__).resolve().parents[1]
TINY = {"dataset": "digits", "anomaly_class": 1, "epochs": 1, "width": 8, "latent_dim": 16, "train_subset": 200}


def test_a_run_records_its_provenance_without_machine_paths(tmp_path):
    run_experiment(make_config(**TINY, device="cpu"), out_dir=tmp_path, progress=False)
    text = (tmp_path / runs.METRICS).read_text()
    made = json.loads(text)["provenance"]
    assert set(made) == set(runs.PROVENANCE_FIELDS)
    assert made["commit"] is None or re.fullmatch(r"[0-9a-f]{40}", made["commit"])
    assert made["dirty"] in (True, False, None) and made["cvgad"] == made["package"]
    assert made["torch"] == torch.__version__ and made["threads"] == torch.get_num_threads()
    assert made["device"] == "cpu" and made["cores"] >= 1 and made["wall_seconds"] > 0
    assert made["started"] <= made["ended"] and made["load_1min_start"] >= 0 and made["load_1min_end"] >= 0
    assert str(REPO) not in text and str(tmp_path) not in text


def test_a_record_made_before_provenance_reads_as_unknown():
    assert runs.read_provenance({"auc": 0.5}) == dict.fromkeys(runs.PROVENANCE_FIELDS, "unknown")
    assert runs.read_provenance(None)["commit"] == "unknown"
