"""Time and memory against the number of training rows, from the competition's 614 to a Tahoe-size screen, in one run.

    python benchmarks/scale.py [--rows 614 5000 20000 57000] [--genes 18211] [--workers-rows 20000]
                               [--out benchmarks/scale.json] [--plot benchmarks/scale.png]
                               [--cv-rows 20000] [--cv-out benchmarks/scale_cv.json]

Per size, a synthetic screen of 40 cell types x rows/40 compounds (614: the competition's own design),
the last 4 cell types' last tenth of compounds held out as the pairs to predict, written a row group at a
time (pertnet/synthetic/__init__.py: never held whole). Then, each command in its own process (wall time
and peak RSS, as benchmarks/bench.py measures them): prepare_data, train (1 rep x 1 epoch per entry) and
predict of stage_1, then the same of stage_2 on stage_1's pseudolabels. The configured time of each stage
is projected from each entry's measured seconds at 1 and 2 epochs, x its configured reps x epochs (its set-up
is counted once; an epoch's time is what a second epoch added). The SVD basis's time is read from train's log; its error
against the exact basis is measured where both run (5,000 rows: the randomized basis starts above 4,096).
At --workers-rows, stage_1's training (1 rep x 2 epochs) on a local Dask cluster of 1 and of 2 workers:
their ratio.

At each --cv-rows, `evaluate --stage simple --cv` (1 rep x 1 epoch per fold) on a screen of 10 cell types whose
last 2 hold out a tenth of the compounds: the author's rule makes 8 folds x 2 repeats of it (the design above
would make 72). Its wall time and peak RSS, and the time of its SVD bases; then the same of `evaluate
--submission` scoring a noisy submission of the pairs to predict (the truth plus standard normal noise) against
the truth, beside the baselines fitted on the training file. Into --cv-out, where each size replaces only its own earlier result (57,000 rows take about two hours:
`--rows --cv-rows 57000` runs it alone).
"""
import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench import run_command  # noqa: E402
from pertnet import data, defaults, synthetic, tablefile, targets  # noqa: E402

CELL_TYPES, TEST_CELL_TYPES = 40, 4
CV_CELL_TYPES, CV_TEST_CELL_TYPES = 10, 2


def make_screen(folder, rows, genes, cell_types=CELL_TYPES, test_cell_types=TEST_CELL_TYPES):
    """A synthetic screen of about `rows` training rows in `folder`, a tenth of the compounds held out in the last
    `test_cell_types` cell types; (training rows, pairs to predict)."""
    if rows == 614:
        synthetic.generate(folder, n_genes=genes)
    else:
        compounds = int(np.ceil(rows / (cell_types - test_cell_types / 10)))
        design = synthetic.screen_design([f"line {i:02d}" for i in range(cell_types)],
                                         [f"drug {i:05d}" for i in range(compounds)],
                                         test_cell_types=test_cell_types, test_compounds=max(1, compounds // 10))
        synthetic.generate(folder, n_genes=genes, design=design)
    import pyarrow.parquet as pq

    return pq.ParquetFile(Path(folder) / "de_train.parquet").metadata.num_rows, \
        sum(1 for _ in open(Path(folder) / "id_map.csv")) - 1


def stage_commands(folder, stage, epochs):
    common = ["--stage", stage, "--data-dir", folder, "--models-dir", f"{folder}/models",
              "--submissions-dir", f"{folder}/submissions"]
    return [("prepare_data", ["-m", "prepare_data", *common]),
            ("train", ["-m", "train", *common, "--reps", "1", "--epochs", str(epochs)]),
            ("predict", ["-m", "predict", *common])]


def entry_seconds(output):
    return {entry: float(s) for entry, s in re.findall(r"entry (\w+) \(\d+/\d+\): saved 1 reps in ([\d.]+)s", output)}


def projected_seconds(one_epoch, two_epochs, stage):
    """The configured stage's training time from train's logs at 1 rep x 1 and x 2 epochs: per entry, its set-up
    (the first) and an epoch's time (their difference, at least 0) x its configured reps x epochs."""
    once, twice = entry_seconds(one_epoch), entry_seconds(two_epochs)
    configured = {e["id"]: e["reps"] * e["epochs"] for e in defaults.STAGES[stage]}
    return sum(once[entry] + max(twice[entry] - once[entry], 0) * (configured[entry] - 1) for entry in once)


def svd_seconds(output):
    found = re.search(r"SVD basis: \d+ components of .* in ([\d.]+)s", output)
    return float(found[1]) if found else None


def basis_error(folder, stage="stage_1"):
    """The randomized basis against the exact one on the prepared targets: reconstruction RMSE of each, and
    the smallest cosine between their components."""
    prepared = np.load(Path(folder) / "prepared" / f"{stage}.npz")
    table = tablefile.TableFile(Path(folder) / "prepared" / str(prepared["targets_file"]))
    k = max(e["n_dim"] for e in defaults.STAGES[stage])
    y = tablefile.to_array(table)
    exact = targets.top_right_singular_vectors(y.astype(np.float64), k).astype(np.float32)
    randomized = targets.randomized_right_singular_vectors(table, k).astype(np.float32)
    rmse = {name: float(np.sqrt(np.mean((y - (y @ basis.T) @ basis) ** 2)))
            for name, basis in (("exact", exact), ("randomized", randomized))}
    cosines = np.abs(np.sum(exact * randomized, axis=1))
    return dict(reconstruction_rmse=rmse, relative_increase=rmse["randomized"] / rmse["exact"] - 1,
                component_cosine_min=float(cosines.min()), component_cosine_median=float(np.median(cosines)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="*", default=[614, 5000, 20000, 57000])
    parser.add_argument("--genes", type=int, default=18211)
    parser.add_argument("--workers-rows", type=int, default=20000, help="the size of the 1 vs 2 workers run (0: none)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "scale.json")
    parser.add_argument("--plot", type=Path, default=ROOT / "benchmarks" / "scale.png")
    parser.add_argument("--cv-rows", type=int, nargs="*", default=[20000])
    parser.add_argument("--cv-out", type=Path, default=ROOT / "benchmarks" / "scale_cv.json")
    args = parser.parse_args()
    results = []
    for rows in args.rows:
        with tempfile.TemporaryDirectory(prefix="pertnet-scale-") as folder:
            started = time.perf_counter()
            train_rows, pairs = make_screen(folder, rows, args.genes)
            size = dict(rows=train_rows, pairs=pairs, generate_s=round(time.perf_counter() - started, 1))
            print(f"{train_rows} training rows x {args.genes} genes, {pairs} pairs to predict "
                  f"(generated in {size['generate_s']}s)", flush=True)
            for stage in ("stage_1", "stage_2"):
                for name, command in stage_commands(folder, stage, 1):
                    wall, peak, output = run_command(f"{stage} {name}", command, Path(folder) / f"{stage}-{name}.log")
                    size[f"{stage}_{name}"] = dict(wall_s=round(wall, 1), peak_mb=round(peak))
                    if name == "train":
                        size[f"{stage}_svd_s"] = svd_seconds(output)
                        again = stage_commands(folder, stage, 2)[1][1] + ["--force"]
                        _, _, twice = run_command(f"{stage} train x 2 epochs", again, Path(folder) / f"{stage}-2.log")
                        size[f"{stage}_projected_h"] = round(projected_seconds(output, twice, stage) / 3600, 2)
                    print(f"  {stage} {name:<12} {wall:7.1f} s, peak {peak / 1024:5.2f} GB", flush=True)
            if targets.EXACT_UP_TO < train_rows <= 12000:  # where the exact basis runs in a minute or two
                size["svd_error"] = basis_error(folder)
            if rows == args.workers_rows:
                for workers in (1, 2):
                    command = stage_commands(folder, "stage_1", 2)[1][1] + ["--force", "--workers", str(workers)]
                    wall, _, _ = run_command(f"train --workers {workers}", command, Path(folder) / f"workers{workers}.log")
                    size[f"train_workers_{workers}_s"] = round(wall, 1)
                size["workers_2_over_1_speedup"] = round(size["train_workers_1_s"] / size["train_workers_2_s"], 2)
                print(f"  train --workers 1 {size['train_workers_1_s']} s, --workers 2 {size['train_workers_2_s']} s: "
                      f"{size['workers_2_over_1_speedup']}x", flush=True)
            results.append(size)
            args.out.write_text(json.dumps(results, indent=1))
    if results:
        plot(results, args.plot)
        print(json.dumps(results, indent=1))
    cv_results = [cross_validation(rows, args.genes) for rows in args.cv_rows]
    if cv_results:  # each size replaces its own earlier result: the sizes are hours apart, run one at a time
        measured = {r["rows"] for r in cv_results}
        earlier = json.loads(args.cv_out.read_text()) if args.cv_out.is_file() else []
        kept = [r for r in earlier if r["rows"] not in measured]
        args.cv_out.write_text(json.dumps(sorted(kept + cv_results, key=lambda r: r["rows"]), indent=1))
        print(json.dumps(cv_results, indent=1))


def cross_validation(rows, genes):
    """`evaluate --stage simple --cv` (1 rep x 1 epoch) on a screen of about `rows` training rows of 8 folds."""
    with tempfile.TemporaryDirectory(prefix="pertnet-scale-cv-") as folder:
        train_rows, pairs = make_screen(folder, rows, genes, CV_CELL_TYPES, CV_TEST_CELL_TYPES)
        command = ["-m", "evaluate", "--stage", "simple", "--cv", "--reps", "1", "--epochs", "1", "--data-dir", folder,
                   "--models-dir", f"{folder}/models"]
        wall, peak, output = run_command("evaluate --cv", command, Path(folder) / "cv.log")
        held_out = re.search(r"\((\d+) held-out rows x", output).group(1)
        svd = [float(s) for s in re.findall(r"SVD basis: \d+ components of .* in ([\d.]+)s", output)]
        result = dict(rows=train_rows, pairs=pairs, out_of_fold_rows=int(held_out), wall_s=round(wall, 1),
                      peak_mb=round(peak), svd_s=round(sum(svd), 1), bases=len(svd))
        print(f"  evaluate --cv {train_rows} rows: {wall:7.1f} s, peak {peak / 1024:5.2f} GB", flush=True)
        submission = noisy_submission(folder)
        command = ["-m", "evaluate", "--submission", submission, "--data-dir", folder]
        wall, peak, _ = run_command("evaluate --submission", command, Path(folder) / "score.log")
        result.update(score_wall_s=round(wall, 1), score_peak_mb=round(peak))
        print(f"  evaluate --submission of {pairs} pairs: {wall:7.1f} s, peak {peak / 1024:5.2f} GB", flush=True)
        return result


def noisy_submission(folder):
    """A submission of the screen's pairs to predict: their truth plus standard normal noise."""
    import pandas as pd

    truth = pd.read_parquet(Path(folder) / "de_test.parquet")
    genes = [c for c in truth.columns if c.startswith("G")]
    id_map = pd.read_csv(Path(folder) / "id_map.csv").merge(truth, on=["cell_type", "sm_name"], how="left")
    noise = np.random.default_rng(0).standard_normal((len(id_map), len(genes)), np.float32)
    path = Path(folder) / "noisy_submission.csv"
    data.write_submission(path, id_map["id"], genes, id_map[genes].to_numpy(np.float32) + noise)
    return path


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r["rows"] for r in results]
    figure, (times, memory) = plt.subplots(1, 2, figsize=(11, 4))
    for key in ("prepare_data", "train", "predict"):
        times.plot(rows, [r[f"stage_1_{key}"]["wall_s"] for r in results], "o-", label=f"stage_1 {key}")
        memory.plot(rows, [r[f"stage_1_{key}"]["peak_mb"] / 1024 for r in results], "o-", label=f"stage_1 {key}")
    memory.plot(rows, [r["stage_2_train"]["peak_mb"] / 1024 for r in results], "s--", label="stage_2 train")
    memory.axhline(2, color="grey", linestyle=":", label="2 GB")
    times.set(xscale="log", yscale="log", xlabel="training rows", ylabel="wall seconds (train: 1 rep x 1 epoch)")
    memory.set(xscale="log", xlabel="training rows", ylabel="peak memory (GB)")
    for axes in (times, memory):
        axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
