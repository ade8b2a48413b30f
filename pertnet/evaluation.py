"""How good is a prediction: score it against a truth file, or cross-validate a stage on its
training data as the author did; either way beside four baselines, as a table, JSON and a plot.

The report (what --json writes; README "Evaluate" has the schema) holds, for the model and each
baseline, every metric of `pertnet.metrics` overall and by cell type. In cross-validation the
overall score is the mean over folds and repeats of each fold's mean over its rows.
"""
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from pertnet import UserError, bundle, crossval, data, intervals, metrics, schemas
from pertnet.crossval import CrossValidation
from pertnet.entries import departure
from pertnet.estimator import pairs_frame
from pertnet.files import atomic_path, require_writable, write_text

TRUTH_FILES = ("de_test.parquet", "de_test.h5ad")  # the hidden truth, where a data folder has one (the demo does)


def truth_file(data_dir):
    """The data folder's truth file: de_test.parquet, else de_test.h5ad (None if neither)."""
    return next((Path(data_dir) / name for name in TRUTH_FILES if (Path(data_dir) / name).is_file()), None)


# ---------------------------------------------------------------- reading a submission and a truth

def _read_table(path, role, layer=None):
    """(the non-gene columns as a frame, the genes, their values) of a parquet, CSV or h5ad file, by
    its suffix. layer: an h5ad's layer (default: `prediction` in a prediction file, else sign_log10_pval)."""
    suffix = Path(path).suffix
    if data.is_h5ad(path):
        from pertnet import h5ad

        obs, genes, values, _ = h5ad.read_observations(path, layer)
        return obs, genes, values
    try:
        if suffix == ".parquet":
            return data.read_parquet(path)
        # pandas' C parser, the whole file at once: half the memory of pyarrow's, and half the time of
        # its own default (low_memory), which parses 18,211 columns in pieces and glues each back together
        frame = data._read(path, lambda csv: pd.read_csv(csv, low_memory=False))
        genes = schemas.gene_columns(frame.columns)
        return frame[frame.columns.difference(genes, sort=False)], genes, frame[genes].to_numpy(np.float64)
    except (TypeError, ValueError):
        raise UserError(f"{path}: the {role}'s gene columns must hold numbers") from None


def _keyed(frame, path, id_map):
    """The (narrow) frame with its (cell_type, sm_name) pairs, taken from id_map by id where it has none."""
    if set(schemas.PAIR) <= set(frame.columns):
        return frame.astype({column: str for column in schemas.PAIR})
    if "id" not in frame.columns:
        raise UserError(f"{path}: needs cell_type and sm_name columns, or an id column to align rows by")
    if id_map is None:
        return frame
    unknown = sorted(set(frame["id"]) - set(id_map["id"]))
    if unknown:
        raise UserError(f"{path}: {len(unknown)} id(s) are not in id_map.csv (e.g. {unknown[:5]}); "
                        "use the id_map the file was written for (--data-dir)")
    return frame.drop(columns=[c for c in schemas.PAIR if c in frame.columns]).merge(id_map, on="id", how="left")


def _finite(values, path, role):
    """float64 values in the layout pandas gave (each gene contiguous), so that row sums add in the
    same order and scores match earlier reports to the last digit; NaN and infinities are errors."""
    values = np.asfortranarray(values, np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        rows = sorted(set(np.nonzero(bad)[0].tolist()))
        raise UserError(f"{path}: {int(bad.sum())} NaN or infinite value(s) in {len(rows)} row(s) of the {role} "
                        f"(e.g. rows {rows[:5]}); every prediction must be a number")
    return values


def align(submission_path, truth_path, id_map=None, layer=None, submission_layer=None):
    """Rows matched by (cell_type, sm_name) (or by id where neither file names its pairs and there is
    no id_map), genes by name. Returns (pairs frame in the truth's row order, predictions, truth, genes).
    layer: the truth's layer, where it is an h5ad file (submission_layer: the submission's). Only the
    narrow frames of row names are merged; the values are picked with index arrays."""
    tables = {}
    for role, path in (("submission", submission_path), ("truth", truth_path)):
        frame, genes, values = _read_table(path, role, layer if role == "truth" else submission_layer)
        tables[role] = _keyed(frame, path, id_map), genes, values
    (submission, submission_genes, predicted), (truth, genes, true) = tables["submission"], tables["truth"]
    key = schemas.PAIR if all(set(schemas.PAIR) <= set(f.columns) for f in (submission, truth)) else ["id"]
    if key == ["id"] and not all("id" in f.columns for f in (submission, truth)):
        raise UserError(f"{submission_path} and {truth_path}: one names its pairs, the other only ids; "
                        "give --data-dir a folder with the id_map.csv that maps the ids to pairs")
    data.check_same_genes(submission_genes, genes, submission_path, truth_path)
    for path, frame in ((submission_path, submission), (truth_path, truth)):
        duplicated = frame[key][frame[key].duplicated()]
        if len(duplicated):
            raise UserError(f"{path}: {len(duplicated)} row(s) repeat a {'/'.join(key)} "
                            f"(e.g. {duplicated.head(3).values.tolist()}); keep one per pair")
    truth_keys, submission_keys = (list(map(tuple, f[key].to_numpy().tolist())) for f in (truth, submission))
    differ = schemas.differences(submission_keys, truth_keys)
    if differ:
        raise UserError(f"{submission_path}: its rows differ from {truth_path}'s: {differ}; "
                        "score a submission of the same pairs")
    row = {k: i for i, k in enumerate(submission_keys)}
    column = {gene: i for i, gene in enumerate(submission_genes)}
    predicted = predicted[np.ix_([row[k] for k in truth_keys], [column[g] for g in genes])]  # the truth's order
    pairs = truth[key].reset_index(drop=True)
    if key == ["id"]:
        pairs = pairs.assign(cell_type="all", sm_name=pairs["id"].astype(str))
    return pairs[schemas.PAIR], _finite(predicted, submission_path, "submission"), _finite(true, truth_path, "truth"), genes


# ---------------------------------------------------------------- baselines and the report

def baselines(train, pairs, genes, source):
    """Each baseline's prediction of `pairs` from the training rows `train`."""
    for column in schemas.PAIR:
        unknown = sorted(set(pairs[column]) - set(train[column]))
        if unknown:
            raise UserError(f"{source}: no training rows for {column} {unknown[:5]}, so the baselines cannot "
                            "predict their pairs; score pairs whose cell type and compound occur in training")
    return {key: function(train, pairs, genes) for key, (_, function) in metrics.BASELINES.items()}


def label(key, report):
    return report["model_name"] if key == "model" else metrics.BASELINES[key][0]


def _mean_over_groups(row_values, groups):
    """Per metric: the mean over groups of each group's mean over its rows."""
    names = np.unique(groups)
    return {metric: float(np.mean([values[groups == g].mean() for g in names]))
            for metric, values in row_values.items()}


def build_report(model_name, predictions, truth, cell_types, groups=None, **context):
    """(report, per-row scores). predictions: {"model" or baseline key: (rows, genes)}."""
    cell_types = np.asarray(cell_types)
    groups = np.zeros(len(truth)) if groups is None else np.asarray(groups)
    rows = metrics.row_scores(predictions, truth)
    scores = {}
    for key, row_values in rows.items():
        by_cell_type = {cell_type: _mean_over_groups({m: v[cell_types == cell_type] for m, v in row_values.items()},
                                                     groups[cell_types == cell_type])
                        for cell_type in sorted(set(cell_types))}
        overall = _mean_over_groups(row_values, groups)
        scores[key] = dict(overall=overall, by_cell_type=by_cell_type,
                           benchmark={metrics.BENCHMARK_IDS[m]: value for m, value in overall.items()})
    report = dict(context, model_name=model_name, rows=int(len(truth)), genes=int(truth.shape[1]),
                  metrics=list(metrics.METRICS), benchmark_metric_ids=metrics.BENCHMARK_IDS, scores=scores,
                  best_baseline=None, improvement=None)
    baseline_keys = [key for key in scores if key != "model"]
    if baseline_keys:
        best = min(baseline_keys, key=lambda k: scores[k]["overall"]["mrrmse"])
        model, reference = scores["model"]["overall"]["mrrmse"], scores[best]["overall"]["mrrmse"]
        report.update(best_baseline=best, improvement=dict(
            mrrmse=reference - model, percent=100 * (reference - model) / reference if reference else 0.0))
    return report, rows


def format_report(report):
    """The report as the table printed on stdout."""
    scores, names = report["scores"], {key: label(key, report) for key in report["scores"]}
    width = max(len(n) for n in names.values()) + 2
    lines = [f"\n{report['title']}", f"  {'':<{width}}" + "".join(f"{m:>10}" for m in metrics.METRICS)]
    for key, name in names.items():
        lines.append(f"  {name:<{width}}" + "".join(f"{scores[key]['overall'][m]:>10.4f}" for m in metrics.METRICS))
    if report["best_baseline"]:
        gain = report["improvement"]
        lines.append(f"  {report['model_name']} improves MRRMSE by {gain['mrrmse']:.4f} ({gain['percent']:.1f}%) "
                     f"on the best {names[report['best_baseline']]}")
    if "intervals" in report:
        lines.append(intervals.format_calibration(report["intervals"]))
    if report.get("coverage"):
        lines.append(intervals.format_coverage(report["coverage"]))
    cell_types = list(scores["model"]["by_cell_type"])
    if len(cell_types) > 1:
        short = {key: ("model" if key == "model" else key) for key in scores}
        lines.append(f"  MRRMSE by cell type:\n  {'':<20}" + "".join(f"{short[k]:>16}" for k in scores))
        for cell_type in cell_types:
            lines.append(f"  {cell_type:<20}" + "".join(
                f"{scores[k]['by_cell_type'][cell_type]['mrrmse']:>16.4f}" for k in scores))
    return "\n".join(lines)


def write_json(path, report):
    write_text(path, json.dumps(report, indent=1) + "\n")


def pyplot():
    """matplotlib.pyplot drawing to files (no display), imported where a plot is asked for."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot(path, report, rows, predictions, truth, pairs, worst=6):
    """Per-row RMSE of the model against the best baseline by cell type, and the errors across
    genes of the model's worst rows."""
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

    chosen, seen = [], set()  # the worst rows, each pair once (cross-validation repeats pairs)
    for row in np.argsort(-rows["model"]["mrrmse"], kind="stable"):
        name = f"{pairs['sm_name'].iat[row]} / {pairs['cell_type'].iat[row]}"
        if name not in seen:
            seen.add(name)
            chosen.append((row, name))
        if len(chosen) == worst:
            break
    right.boxplot([predictions["model"][row] - truth[row] for row, _ in chosen], vert=False,
                  whis=(1, 99), showfliers=False)
    right.set_yticks(range(1, len(chosen) + 1), [name for _, name in chosen], fontsize=8)
    right.invert_yaxis()
    right.axvline(0, color="k", lw=1)
    right.set(xlabel="prediction - truth across genes (box: quartiles, whiskers: 1st-99th percentile)",
              title=f"Errors of the {len(chosen)} worst rows")
    figure.suptitle(report["title"], fontsize=10)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    plt.close(figure)


# ---------------------------------------------------------------- the two ways to evaluate

def score_submission(submission_path, truth_path, data_dir, model_name, train_file=None, layer=None, log=print):
    """Score a submission against a truth file, beside the baselines fitted on the training file
    (data_dir's de_train, or train_file; skipped when there is none). Returns (report, details for `plot`).
    layer: the layer of h5ad truth and training files."""
    started = time.perf_counter()
    data_dir = Path(data_dir)
    id_map_path = data_dir / data.ID_MAP_FILE
    id_map = data.read_id_map(id_map_path) if id_map_path.is_file() else None
    pairs, predicted, truth, genes = align(submission_path, truth_path, id_map, layer)
    predictions = {"model": predicted}
    train_path = data.training_file(data_dir, train_file)
    if train_path.is_file() and (pairs["cell_type"] != "all").all():
        predictions.update(baselines(data.read_training(train_path, layer)[0], pairs, genes, truth_path))
    else:
        log(f"(no baselines: they need {train_path} and pairs named by cell_type and sm_name)")
    report, rows = build_report(
        model_name, predictions, truth, pairs["cell_type"], mode="submission",
        submission_file=str(submission_path), truth_file=str(truth_path),
        title=f"{model_name}: {len(truth)} rows x {len(genes)} genes of {submission_path} against {truth_path}")
    report["coverage"] = score_intervals(submission_path, truth_path, id_map, layer, pairs, predicted, truth)
    report["wall_s"] = round(time.perf_counter() - started, 1)
    return report, dict(rows=rows, predictions=predictions, truth=truth, pairs=pairs)


def score_intervals(submission_path, truth_path, id_map, layer, pairs, predicted, truth):
    """The coverage report (`intervals.coverage_report`) of the bounds `predict --interval` wrote with the
    submission (beside a CSV, pertnet/data.py's `interval_paths`; inside an h5ad), None where it has none."""
    submission_path = Path(submission_path)
    if data.is_h5ad(submission_path):
        from pertnet import h5ad

        fields = h5ad.read_interval_fields(submission_path)
        if fields is None:
            return None
        scores, level = fields
        sources = {kind: (submission_path, kind) for kind in ("lower", "upper")}
    else:
        paths = data.interval_paths(submission_path)
        present = [kind for kind, path in paths.items() if path.is_file()]
        if not present:
            return None
        if len(present) < len(paths):
            missing = ", ".join(str(path) for kind, path in paths.items() if kind not in present)
            raise UserError(f"{submission_path}: its interval files are incomplete (no {missing}); rerun "
                            "`python -m predict --interval LEVEL` to write all three")
        scores, level = data.read_uncertainty(paths["uncertainty"])
        sources = {kind: (paths[kind], None) for kind in ("lower", "upper")}
    lower, upper = (align(path, truth_path, id_map, layer, submission_layer)[1]
                    for path, submission_layer in sources.values())
    if (lower > upper).any():
        raise UserError(f"{sources['lower'][0]}: {int((lower > upper).sum())} lower bound(s) above their upper bound; "
                        "rerun `python -m predict --interval LEVEL`")
    key = schemas.PAIR if (pairs["cell_type"] != "all").all() else ["id"]
    named = pairs if key == schemas.PAIR else pairs.assign(id=pairs["sm_name"].astype(int))
    uncertainty = named[key].merge(scores, on=key, how="left")["uncertainty"]
    if uncertainty.isna().any():
        raise UserError(f"{submission_path}: its uncertainty scores miss {int(uncertainty.isna().sum())} of the "
                        f"{len(pairs)} pairs; rerun `python -m predict --interval LEVEL`")
    return intervals.coverage_report(lower, upper, truth, predicted, uncertainty.to_numpy(np.float64),
                                     pairs["cell_type"], level)


def cross_validate(options, tuning_dir=None, log=print):
    """The cross-validation of the stage's files (pertnet/crossval.py: folds from the data's design), each
    fold fitted in memory with the estimator `train` and `predict` use, its held-out rows scored beside
    the baselines; what it learnt about its errors saved as the stage's calibration (pertnet/intervals.py),
    which `predict --interval` reads. Out-of-fold predictions tuning cached in `tuning_dir` are reused."""
    started = time.perf_counter()
    path = bundle.calibration_path(options.models_dir, options.stage)
    require_writable(path.parent, "--models-dir")  # before the training, not after
    cv = CrossValidation.from_files(options, log)
    entries = options.entries()
    cached = cv.cached(entries, tuning_dir) if tuning_dir is not None else None
    if cached is not None:
        log(f"[cv] out-of-fold predictions of {len(entries)} entries: read from {cv.cache_path(entries, tuning_dir)}")
    report, details, calibration = cv_report(cv, entries, options.reps, options.epochs, log, started, cached)
    log(f"calibration -> {calibration.save(path)}")
    return report, details


def cross_validate_model(model, data_, pairs):
    """The cross-validation report of an unfitted `model` (its stage, entries, reps, epochs, seed) on
    `data_`, with folds from the design of `pairs` (the pairs to predict), as `python -m evaluate --cv
    --json` writes it: report["scores"]["model"]["overall"]["mrrmse"] is the CV score. What it learnt
    about the errors becomes `model.calibration_`, which `model.predict(..., interval=q)` uses."""
    train = data.training_data(data_, model.layer)[0]
    pairs = pairs_frame(pairs)
    pseudolabels = model.pseudolabels(train, pairs)
    if pseudolabels is None:
        pseudolabels = pd.DataFrame(columns=schemas.PAIR)
    cv = CrossValidation(train, pairs, pseudolabels, model.stage, model.seed, "the training data", model.log)
    report, _, model.calibration_ = cv_report(cv, model.stage_entries(), model.reps, model.epochs, model.log)
    return report


def cv_report(cv, entries, reps=None, epochs=None, log=print, started=None, cached=None):
    """(report, details, calibration) of `cv` run with `entries` (reps / epochs: the overrides they carry,
    for the report and the departure line); cached: its out-of-fold predictions, where tuning kept them."""
    started = time.perf_counter() if started is None else started
    stage = cv.stage_name
    if departure(stage, reps, epochs):
        log(departure(stage, reps, epochs))
    results = cv.results(entries, log) if cached is None else cv.cached_results(entries, cached)
    parts = []
    for result in sorted(results, key=lambda result: (result.fold.repeat, result.fold.number)):
        fold_train, fold_test = cv.rows(result.fold)
        part = dict(model=result.prediction, truth=result.truth, spread=result.spread, pairs=fold_test[schemas.PAIR],
                    group=np.full(len(fold_test), len(parts)), fold=np.full(len(fold_test), result.fold.number),
                    **baselines(fold_train, fold_test, cv.genes, cv.source))
        fold_scores = {key: metrics.mrrmse(part[key], part["truth"]) for key in ("model", *metrics.BASELINES)}
        log(f"{result.fold.label} {len(fold_test)} held-out rows: MRRMSE {fold_scores.pop('model'):.4f}; baselines " +
            ", ".join(f"{key} {value:.4f}" for key, value in fold_scores.items()))
        parts.append(part)

    stack = {key: np.concatenate([part[key] for part in parts]) for key in ("model", "truth", "spread", "group", "fold",
                                                                            *metrics.BASELINES)}
    pairs = pd.concat([part["pairs"] for part in parts], ignore_index=True)
    predictions = {key: stack[key] for key in ("model", *metrics.BASELINES)}
    held_out_rows = [int(fold.held_out.sum()) for fold in cv.folds if fold.repeat == 0]
    report, rows = build_report(
        stage, predictions, stack["truth"], pairs["cell_type"], stack["group"], mode="cv", stage=stage,
        cv=dict(folds=cv.fold_names, held_out_rows=held_out_rows, repeats=crossval.REPEATS,
                scheme=cv.scheme.as_dict(), seeds=sorted({fold.seed for fold in cv.folds}),
                pseudolabels=len(cv.pseudolabels), reps={e.id: e.reps for e in entries},
                epochs={e.id: e.epochs for e in entries}, overrides=dict(reps=reps, epochs=epochs)),
        title=f"{stage}: cross-validation on {cv.source}, {len(cv.fold_names)} folds "
              f"({cv.scheme.name} scheme) x {crossval.REPEATS} repeats ({len(pairs)} held-out rows x "
              f"{len(cv.genes)} genes)")
    calibration = intervals.Calibration.fit(stage, cv.genes, entries, stack["model"], stack["spread"], stack["truth"],
                                            stack["fold"])  # a fold's rows in both repeats: one group
    report["intervals"] = calibration.summary
    report["wall_s"] = round(time.perf_counter() - started, 1)
    return report, dict(rows=rows, predictions=predictions, truth=stack["truth"], pairs=pairs), calibration


def evaluate(report_and_details, json_path=None, plot_path=None, log=print):
    """Print the report's table; write its JSON and plot where asked."""
    report, details = report_and_details
    log(format_report(report))
    if json_path:
        write_json(json_path, report)
        log(f"report -> {json_path}")
    if plot_path:
        plot(plot_path, report, **details)
        log(f"plot -> {plot_path}")
    log(f"evaluated in {report['wall_s']:.1f}s")
    return report
