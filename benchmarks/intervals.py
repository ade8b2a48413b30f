"""What prediction intervals cost and how well they hold, in one run.

    python benchmarks/intervals.py --stage stage_1 --data-dir DIR --models-dir DIR [--levels 0.8,0.9]
                                   [--repeats 3] [--json F]

The stage must be trained in --models-dir and calibrated there (`python -m evaluate --stage S --cv`
with the same --reps / --epochs). Then:

1. Cost: `python -m predict` of the stage without and with `--interval` (the first level), each in
   its own process, alternated --repeats times: the median wall time of each, their ratio, and the
   peak resident memory of each (the child's own, from wait4). The submission written with bounds
   must be the one written without, byte for byte.
2. Coverage: where the data folder has a truth file (the demo does), `python -m evaluate` of the
   bounds at every level: coverage against the nominal level, mean width, and the Spearman of the
   uncertainty score and of the size of the prediction with the pairs' row RMSE.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pertnet import evaluation, outputs  # noqa: E402


def predict(args, submissions, level=None):
    """(wall seconds, peak RSS in GB) of one `python -m predict` in its own process."""
    command = [sys.executable, "-m", "predict", "--stage", args.stage, "--data-dir", str(args.data_dir),
               "--models-dir", str(args.models_dir), "--submissions-dir", str(submissions)]
    command += ["--interval", str(level)] if level is not None else []
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(command)} failed: {process.stderr.read().strip()}")
    return wall, usage.ru_maxrss / 1024 ** 2


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--stage", required=True)
    p.add_argument("--data-dir", type=Path, required=True)
    p.add_argument("--models-dir", type=Path, required=True)
    p.add_argument("--levels", default="0.8,0.9", help="levels to measure coverage at; the first is timed")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    levels = [float(level) for level in args.levels.split(",")]
    results = dict(stage=args.stage, data_dir=str(args.data_dir), levels=levels)
    with tempfile.TemporaryDirectory(prefix="pertnet-intervals-") as scratch:
        scratch = Path(scratch)
        runs = {"plain": [], "interval": []}
        for _ in range(args.repeats):
            runs["plain"].append(predict(args, scratch / "plain"))
            runs["interval"].append(predict(args, scratch / "interval", levels[0]))
        same = all((scratch / mode / f"{args.stage}_submission.csv").read_bytes() ==
                   (scratch / "plain" / f"{args.stage}_submission.csv").read_bytes() for mode in runs)
        wall = {mode: statistics.median(w for w, _ in r) for mode, r in runs.items()}
        peak = {mode: max(m for _, m in r) for mode, r in runs.items()}
        results["cost"] = dict(wall_s=wall, peak_rss_gb=peak, ratio=wall["interval"] / wall["plain"],
                               repeats=args.repeats, submission_identical=same)
        print(f"predict: {wall['plain']:.1f} s without bounds, {wall['interval']:.1f} s with them at {levels[0]} "
              f"({results['cost']['ratio']:.2f}x; median of {args.repeats}); peak RSS {peak['plain']:.2f} / "
              f"{peak['interval']:.2f} GB; the submission is {'the same' if same else 'NOT the same'}, byte for byte")
        truth = evaluation.truth_file(args.data_dir)
        results["coverage"] = []
        for level in levels if truth is not None else ():
            folder = scratch / f"at-{level}"
            predict(args, folder, level)
            report = evaluation.score_submission(outputs.path(folder, args.stage), truth, args.data_dir,
                                                 args.stage, log=lambda line: None)[0]["coverage"]
            results["coverage"].append(report)
            ranking = report["ranking"]
            print(f"at {level}: coverage {report['coverage']:.1%}, mean width {report['mean_width']:.3f}, by cell type "
                  + ", ".join(f"{c} {v:.1%}" for c, v in report["by_cell_type"].items())
                  + f"; Spearman with row RMSE: uncertainty {ranking['uncertainty_spearman']}, size of the prediction "
                  f"{ranking['prediction_size_spearman']:.3f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
