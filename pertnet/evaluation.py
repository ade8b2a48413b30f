"""How good is a submission: scored against a truth file beside four baselines, with the coverage of its
bounds where it has them; and showing a report (the CV's too, pertnet/crossval.py) as a table, JSON and
a plot.

The reading and matching of the files is pertnet/alignment.py's, the report pertnet/report.py's, the
bounds' coverage pertnet/coverage.py's and the plot pertnet/plots.py's.
"""
import tempfile
import time
from pathlib import Path

import pandas as pd

from pertnet import bundle, coverage, data, metrics, plots, report as reports
from pertnet.alignment import Truth
from pertnet.errors import UserError
from pertnet.labels import Labels
from pertnet.pace import Pace

TRUTH_FILES = ("de_test.parquet", "de_test.h5ad")  # the hidden truth, where a data folder has one (the demo does)


def truth_file(data_dir):
    """The data folder's truth file: de_test.parquet, else de_test.h5ad (None if neither)."""
    return next((Path(data_dir) / name for name in TRUTH_FILES if (Path(data_dir) / name).is_file()), None)


def label_columns(options):
    """The label columns a submission of options.stage is scored with: the options' where given, else those
    its models recorded, else the competition's."""
    if options.labels is not None or options.stage is None:
        return options.label_columns()
    recorded = bundle.recorded_labels(options.models_dir, options.stage)
    return Labels() if recorded is None else Labels.from_json(recorded)


def score_submission(submission_path, truth_path, data_dir, model_name, train_file=None, layer=None, log=print,
                     labels=Labels()):
    """Score a submission against a truth file, beside the baselines fitted on the training file
    (data_dir's de_train, or train_file; skipped when there is none). Returns (report, details for the plot).
    layer: the layer of h5ad truth and training files; labels: their label columns (pertnet/labels.py).
    The files are read into tables in a temporary folder and scored a block of rows at a time
    (pertnet/alignment.py): memory holds a block of each, the baselines' means and a few numbers per row."""
    started = time.perf_counter()
    data_dir = Path(data_dir)
    id_map_path = data_dir / data.ID_MAP_FILE
    id_map = data.read_id_map(id_map_path, labels) if id_map_path.is_file() else None
    with tempfile.TemporaryDirectory(prefix="pertnet-score-") as folder:
        truth = Truth(truth_path, id_map, layer, labels, folder, log)
        submission = truth.match(submission_path)
        pairs, genes = truth.pairs(submission), truth.genes
        train_path = data.training_file(data_dir, train_file)
        baselines = None
        if train_path.is_file() and (pairs["cell_type"] != "all").all():
            baselines = _baselines(train_path, layer, labels, pairs, genes, truth_path, log)
        else:
            log(f"(no baselines: they need {train_path} and pairs named by cell_type and sm_name)")
        bounds = coverage.stored(submission_path, truth, pairs)
        scores, pace = [], Pace(log)
        for rows, true, predicted, *bound_values in truth.blocks(submission, *(bounds.files if bounds else [])):
            predictions = {"model": predicted, **(baselines(pairs.iloc[rows]) if baselines else {})}
            scores.append(metrics.row_scores(predictions, true))
            if bounds:
                bounds.add(*bound_values, true, predicted, pairs["cell_type"].to_numpy()[rows])
            pace.tick(rows[-1] + 1, len(pairs), f"scored {rows[-1] + 1} of {len(pairs)} rows")
        rows = metrics.joined(scores)
        report = reports.report_of_rows(
            model_name, rows, len(genes), pairs["cell_type"], mode="submission",
            submission_file=str(submission_path), truth_file=str(truth_path),
            title=f"{model_name}: {len(pairs)} rows x {len(genes)} genes of {submission_path} against {truth_path}")
        report["coverage"] = bounds.report() if bounds else None
        report["wall_s"] = round(time.perf_counter() - started, 1)
        worst = []
        for row, name in reports.worst_rows(rows["model"]["mrrmse"], pairs):
            true, predicted = truth.values([row], submission)
            worst.append((name, predicted[0] - true[0]))
    return report, dict(rows=rows, pairs=pairs, worst=worst)


def _baselines(train_path, layer, labels, pairs, genes, source, log):
    """Each baseline's prediction of some of `pairs` (in `genes` order), fitted on the training file read a
    block of genes at a time: a function of those pairs."""
    train_pairs, train_genes, blocks, _ = data.training_values(train_path, labels, layer)
    missing = [gene for gene in genes if gene not in set(train_genes)]
    if missing:
        raise UserError(f"{source}: {len(missing)} gene(s) not in {train_path} (e.g. {', '.join(missing[:5])}), so "
                        "the baselines cannot predict them; score against a truth file of the training file's genes")
    baselines = reports.Baselines(train_pairs, blocks, train_genes, pairs, source, log)
    column = pd.Index(train_genes).get_indexer(genes)
    return lambda some: {key: values[:, column] for key, values in baselines.predict(some).items()}


def show(report_and_details, json_path=None, plot_path=None, log=print):
    """Print the report's table; write its JSON and plot where asked."""
    report, details = report_and_details
    log(reports.format_report(report))
    if json_path:
        reports.write_json(json_path, report)
        log(f"report -> {json_path}")
    if plot_path:
        plots.errors(plot_path, report, details["rows"], details["pairs"], details["worst"])
        log(f"plot -> {plot_path}")
    log(f"evaluated in {report['wall_s']:.1f}s")
    return report
