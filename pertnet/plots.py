"""Figures drawn to PNG files (matplotlib, no display): a report's per-row errors, and a tuning study's
history."""
import numpy as np

from pertnet.errors import UserError
from pertnet.files import atomic_path
from pertnet.report import label


def pyplot():
    """matplotlib.pyplot drawing to files (no display), imported where a plot is asked for."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save(figure, path):
    """Write `figure` as a PNG at `path`, atomically, and free it."""
    plt = pyplot()
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    plt.close(figure)


def errors(path, report, rows, pairs, worst):
    """Per-row RMSE of the model against the best baseline by cell type, and the errors across
    genes of the model's worst rows (worst: ("compound / cell type", prediction - truth) of each)."""
    plt = pyplot()

    best = report["best_baseline"]
    if best is None:
        raise UserError("--plot compares the model with the best baseline, and the baselines need "
                        "de_train.parquet in the data folder (--data-dir)")
    cell_types = pairs["cell_type"].to_numpy()
    figure, (left, right) = plt.subplots(1, 2, figsize=(14, 6))
    for cell_type in sorted(set(cell_types)):
        mask = cell_types == cell_type
        left.scatter(rows[best]["mrrmse"][mask], rows["model"]["mrrmse"][mask], s=12, alpha=0.7, label=cell_type)
    top = max(rows[best]["mrrmse"].max(), rows["model"]["mrrmse"].max()) * 1.05
    left.plot([0, top], [0, top], "k--", lw=1)
    left.set(xlim=(0, top), ylim=(0, top), xlabel=f"row RMSE, {label(best, report)}",
             ylabel=f"row RMSE, {report['model_name']}", title="Per-row RMSE (below the line: the model wins)")
    left.legend(fontsize=8)

    right.boxplot([values for _, values in worst], orientation="horizontal", whis=(1, 99), showfliers=False)
    right.set_yticks(range(1, len(worst) + 1), [name for name, _ in worst], fontsize=8)
    right.invert_yaxis()
    right.axvline(0, color="k", lw=1)
    right.set(xlabel="prediction - truth across genes (box: quartiles, whiskers: 1st-99th percentile)",
              title=f"Errors of the {len(worst)} worst rows")
    figure.suptitle(report["title"], fontsize=10)
    save(figure, path)


def history(path, study):
    """The optimisation history: each complete trial's CV MRRMSE and the best so far, as a PNG."""
    import optuna

    plt = pyplot()
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    figure, axes = plt.subplots(figsize=(8, 5))
    axes.scatter([t.number for t in complete], [t.value for t in complete], s=16, label="trial")
    axes.step([t.number for t in complete], np.minimum.accumulate([t.value for t in complete]), where="post",
              color="k", label="best so far")
    axes.set(xlabel="trial", ylabel="CV MRRMSE", title=f"study {study.study_name}")
    axes.legend()
    save(figure, path)
