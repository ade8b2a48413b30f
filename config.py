"""The command line's configuration: default paths, and the stages the commands train.

The stages are the package's (pertnet/defaults.py: every entry's hyperparameters and weight, the
original solution's numbers). To run the commands with other values, change them here, e.g.

    STAGES["simple"][0]["epochs"] = 50

or, without editing code, give the commands a stages file with --stages (what `python -m tune`
writes).
"""
import copy
from pathlib import Path

from pertnet import defaults

DATA_DIR = Path("data")                # de_train.parquet, id_map.csv, sample_submission.csv
DEMO_DIR = DATA_DIR / "demo"           # the synthetic dataset that --demo generates and uses
MODELS_DIR = Path("models")            # models/<stage>/...: trained bundles
SUBMISSIONS_DIR = Path("submissions")  # submissions/<stage>_submission.csv
TUNING_DIR = Path("tuning")            # studies (tuning/optuna.db), tuned stages files, cached out-of-fold predictions
SEED = defaults.SEED                   # base seed: row shuffle and every rep's seed derive from it

STAGES = copy.deepcopy(defaults.STAGES)  # {stage: [entry, ...]}: what train, predict, repro, evaluate and tune use
