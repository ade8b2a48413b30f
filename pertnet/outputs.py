"""The formats a prediction is written in, one row each: the file a stage's prediction goes to, how it is
written, read back and built in memory, and where its bounds are.

`python -m predict --output-format` offers the rows' names, the pipeline writes through them, `evaluate`
reads a submission by its suffix, the estimator builds its in-memory result through them and the
benchmark command asks for the h5ad row. Another format (zarr, parquet) is another row.
"""
import json
import uuid
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import pandas as pd

from pertnet import data, defaults, labels, schemas, tablefile
from pertnet.errors import UserError
from pertnet.version import VERSION


class IntervalPrediction(NamedTuple):
    """A prediction with bounds in memory: DataFrames of id, cell_type, sm_name, then the genes (prediction,
    lower, upper), and of id, cell_type, sm_name, uncertainty (each pair's expected row RMSE)."""
    prediction: pd.DataFrame
    lower: pd.DataFrame
    upper: pd.DataFrame
    uncertainty: pd.DataFrame


class StoredBounds(NamedTuple):
    """The bounds stored with a prediction file: where each bound's values are ((file, h5ad layer or None)),
    each pair's uncertainty score (id, cell_type, sm_name, uncertainty) and the coverage level."""
    lower: tuple
    upper: tuple
    uncertainty: pd.DataFrame
    level: float


class OutputFormat(NamedTuple):
    name: str
    suffix: str
    file_name: Callable   # stage -> the file `predict` writes in the submissions folder
    write: Callable       # (path, id_map, genes, blocks, stage, level, log) -> path; stage: the `Stage` predicting;
                          # blocks: (rows: a slice, values, their `intervals.Bounds` or None) as they come;
                          # level: the bounds' coverage level, None without bounds
    blocks: Callable      # (path, layer, labels) -> (the non-gene columns, the genes, their values as (rows: a
                          # slice, genes: a slice, values) blocks, read from the file as they are asked for)
    build: Callable       # (pairs, genes, values, stage, bounds) -> the estimator's in-memory result
    bounds: Callable      # path -> its `StoredBounds`, or None where the prediction has none


# ---------------------------------------------------------------- csv: the competition's submission

def _write_csv(path, id_map, genes, blocks, stage, level, log):
    if level is not None:
        return data.write_with_intervals(path, id_map, genes, blocks, level)
    for stale in data.interval_paths(path).values():  # bounds of an earlier prediction: evaluate would score them
        if stale.is_file():
            stale.unlink()
            log(f"removed {stale}: it belonged to an earlier prediction (rerun with --interval for new bounds)")
    return data.write_submission(path, id_map["id"], genes, ((rows, values) for rows, values, _ in blocks))


def _csv_blocks(path, layer, label_columns):
    frame, genes, blocks = data.csv_blocks(path, label_columns)
    return frame, genes, ((rows, slice(0, len(genes)), values) for rows, values in blocks)


def _build_frame(pairs, genes, values, stage, bounds):
    shown = pd.concat([pairs[["id"]], labels.given(pairs)], axis=1).reset_index(drop=True)  # id, the labels

    def table(values):
        return pd.concat([shown, pd.DataFrame(values, columns=genes)], axis=1)

    if bounds is None:
        return table(values)
    return IntervalPrediction(table(values), table(bounds.lower), table(bounds.upper),
                              shown.assign(uncertainty=bounds.uncertainty))


def _csv_bounds(path):
    paths = data.interval_paths(path)
    present = [kind for kind, file in paths.items() if file.is_file()]
    if not present:
        return None
    if len(present) < len(paths):
        missing = ", ".join(str(file) for kind, file in paths.items() if kind not in present)
        raise UserError(f"{path}: its interval files are incomplete (no {missing}); rerun "
                        "`python -m predict --interval LEVEL` to write all three")
    scores, level = data.read_uncertainty(paths["uncertainty"])
    return StoredBounds((paths["lower"], None), (paths["upper"], None), scores, level)


# ---------------------------------------------------------------- h5ad: the Open Problems benchmark's prediction

def parameters(stage):
    """What made a prediction, for an AnnData's uns["pertnet"]: the package, its version, the stage, its seed
    and its entries as trained (reps and epochs per entry, and each entry whole, as JSON)."""
    return dict(method="pertnet: the 3rd-place solution of Open Problems - Single-Cell Perturbations",
                version=VERSION, stage=stage.name, seed="unknown" if stage.seed is None else int(stage.seed),
                reps={e.id: e.reps for e in stage.entries}, epochs={e.id: e.epochs for e in stage.entries},
                entries=json.dumps([e.as_dict() for e in stage.entries]))


def _write_h5ad(path, id_map, genes, blocks, stage, level, log):
    from pertnet import h5ad

    return h5ad.write_prediction(path, id_map, genes, blocks, stage.dataset_id, level, parameters(stage))


def _h5ad_blocks(path, layer, label_columns):  # the genes are var_names: no label column can be taken for one
    from pertnet import h5ad

    obs, genes, blocks, _ = h5ad.observation_blocks(path, layer)
    return obs, genes, ((slice(0, len(obs)), columns, values) for columns, values in blocks)


def _build_anndata(pairs, genes, values, stage, bounds):
    from pertnet import h5ad

    return h5ad.prediction(pairs, genes, values, stage.dataset_id, bounds, parameters(stage))


def _h5ad_bounds(path):
    from pertnet import h5ad

    fields = h5ad.read_interval_fields(path)
    return None if fields is None else StoredBounds((path, "lower"), (path, "upper"), *fields)


FORMATS = {
    "csv": OutputFormat("csv", ".csv", lambda stage: f"{stage}_submission.csv", _write_csv, _csv_blocks,
                        _build_frame, _csv_bounds),
    "h5ad": OutputFormat("h5ad", ".h5ad", lambda stage: f"{stage}_prediction.h5ad", _write_h5ad, _h5ad_blocks,
                         _build_anndata, _h5ad_bounds),
}
SUBMISSION = "csv"   # the competition's format: what `predict` writes by default, and stage_2's pseudolabel source
BENCHMARK = "h5ad"   # the Open Problems benchmark's prediction file


def path(submissions_dir, stage, name=SUBMISSION):
    """Where `predict --output-format name` writes the stage's prediction."""
    return Path(submissions_dir) / FORMATS[name].file_name(stage)


def of_file(file):
    """The format of a prediction file, by its suffix; None for another suffix."""
    return next((fmt for fmt in FORMATS.values() if Path(file).suffix == fmt.suffix), None)


def pseudolabels(stage, submissions_dir, id_map, genes, folder, log=lambda line: None):
    """The stage's pseudolabels, or None for a stage without: (id_map's canonical pairs, their values in its
    source stage's submission as a `tablefile.Rows` in id_map's order). The values are read a block of rows at a
    time into a pertnet/tablefile.py table in `folder`, named `.<stage>.pseudolabels.<random>.npy`: the caller's
    to remove (a CV's work folder, prepare_data at its end)."""
    file = pseudolabel_source(stage, submissions_dir)
    if file is None:
        return None
    blocks = data.submission_blocks(file, id_map, genes)
    table_path = Path(folder) / f".{stage}.pseudolabels.{uuid.uuid4().hex[:12]}.npy"
    order, done = np.empty(len(id_map), int), 0  # each id_map row's row in the file
    with tablefile.TableWriter(table_path, (len(id_map), len(genes)), log) as writer:  # in the file's row order
        for positions, values in blocks:
            writer.write(slice(done, done + len(values)), slice(0, len(genes)), values)
            order[positions], done = np.arange(done, done + len(values)), done + len(values)
    return id_map[schemas.PAIR].reset_index(drop=True), tablefile.Rows(tablefile.TableFile(table_path), order)


def pseudolabel_source(stage, submissions_dir):
    """The submission a stage's pseudolabels come from (None for a stage without); a missing one is an error."""
    if stage not in defaults.PSEUDOLABEL_SOURCE:
        return None
    source = defaults.PSEUDOLABEL_SOURCE[stage]
    file = path(submissions_dir, source)
    if not file.is_file():
        raise UserError(f"{stage} trains on {source}'s predictions, but {file} does not exist; run "
                        f"`python -m repro --stage {source}` first (or `repro --stage {stage}`, which does)")
    return file
