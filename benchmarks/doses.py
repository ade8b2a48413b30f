"""A dose screen, measured: does declaring the dose as a label pay? (docs/screen.md, "Doses").

Generates `python -m pertnet.synthetic --doses 4` (4 cell lines x 40 compounds x 4 doses, the last 13
compounds asked for in 2 lines, at every dose; --genes of them), then in one run:
- stage_1 with the dose declared (`--perturbation-columns sm_name,dose`): each (compound, dose) one label;
- stage_1 dose-blind (`--ignore-columns dose --replicates mean`): each (line, compound) the mean over its doses,
  its prediction given to every dose;
- the baselines on the same truth: all zeros, the mean over the training lines of the same (compound, dose),
  and the dose-blind compound mean (over every training row of the compound, whatever its dose).

    python benchmarks/doses.py [--genes 2000] [--reps R] [--epochs E] [--out benchmarks/results/doses.json]
"""
import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from pertnet import metrics  # noqa: E402


def run(*args, cwd):
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    if done.returncode != 0:
        sys.exit(f"python -m {' '.join(map(str, args))} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--genes", type=int, default=2000)
    parser.add_argument("--reps", type=int, help="override every entry's reps (default: as configured)")
    parser.add_argument("--epochs", type=int, help="override every entry's epochs (default: as configured)")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()
    overrides = [*(["--reps", args.reps] if args.reps else []), *(["--epochs", args.epochs] if args.epochs else [])]
    with tempfile.TemporaryDirectory(prefix="pertnet-doses-") as folder:
        work = Path(folder)
        run("pertnet.synthetic", "--out", work / "screen", "--doses", 4, "--cell-types", 4, "--compounds", 40,
            "--genes", args.genes, cwd=work)
        train = pd.read_parquet(work / "screen" / "de_train.parquet")
        truth = pd.read_parquet(work / "screen" / "de_test.parquet")
        genes = [c for c in truth.columns if c.startswith("G")]
        id_map = pd.read_csv(work / "screen" / "id_map.csv")
        true = truth.merge(id_map, on=["cell_type", "sm_name", "dose"]).sort_values("id")[genes].to_numpy()
        blind = work / "screen_blind"  # the same training rows; each (line, compound) asked for once, dose-blind
        blind.mkdir()
        for name in ("de_train.parquet", "sample_submission.csv"):
            (blind / name).write_bytes((work / "screen" / name).read_bytes())
        once = id_map.drop_duplicates(["cell_type", "sm_name"])[["cell_type", "sm_name"]].reset_index(drop=True)
        once.rename_axis("id").reset_index().to_csv(blind / "id_map.csv", index=False)
        scores, seconds = {}, {}
        for name, data_dir, labels in (
                ("stage_1, dose declared (--perturbation-columns sm_name,dose)", work / "screen",
                 ["--perturbation-columns", "sm_name,dose"]),
                ("stage_1, dose-blind (--ignore-columns dose --replicates mean)", blind,
                 ["--ignore-columns", "dose", "--replicates", "mean"])):
            out = work / f"run{len(scores)}"
            folders = ["--data-dir", data_dir, "--models-dir", out, "--submissions-dir", out]
            seconds[name] = run("repro", "--stage", "stage_1", *overrides, *labels, *folders, cwd=ROOT)
            submission = pd.read_csv(out / "stage_1_submission.csv")
            asked = pd.read_csv(data_dir / "id_map.csv").merge(submission, on="id")
            predicted = id_map.merge(asked, on=[c for c in asked.columns if c in ("cell_type", "sm_name", "dose")])
            scores[name] = metrics.mrrmse(predicted.sort_values("id_x" if "id_x" in predicted else "id")[genes]
                                          .to_numpy(), true)
        pairs = id_map.merge(train.groupby(["sm_name", "dose"])[genes].mean().reset_index(), how="left",
                             on=["sm_name", "dose"])
        blind = id_map.merge(train.groupby("sm_name")[genes].mean().reset_index(), how="left", on="sm_name")
        scores["baseline: all zeros"] = metrics.mrrmse(np.zeros_like(true), true)
        scores["baseline: mean of the same (compound, dose) over the training lines"] = metrics.mrrmse(
            pairs[genes].to_numpy(), true)
        scores["baseline: dose-blind compound mean"] = metrics.mrrmse(blind[genes].to_numpy(), true)
    print(f"dose screen: {len(train)} training rows, {len(id_map)} pairs to predict x {len(genes)} genes; "
          f"stage_1 {'reps ' + str(args.reps) if args.reps else 'configured reps'}, "
          f"{'epochs ' + str(args.epochs) if args.epochs else 'configured epochs'}")
    for name, score in sorted(scores.items(), key=lambda item: item[1]):
        print(f"  {name:<70} MRRMSE {score:.4f}" + (f"  ({seconds[name]:.0f} s)" if name in seconds else ""))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(dict(scores=scores, seconds=seconds, genes=len(genes), reps=args.reps,
                                            epochs=args.epochs, training_rows=len(train), pairs=len(id_map)), indent=1))


if __name__ == "__main__":
    main()
