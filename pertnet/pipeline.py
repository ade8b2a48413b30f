"""The commands' work on files: prepare -> train -> predict, and repro's chain; each read top to bottom.

files -> validated frames -> training set (data/prepared/<stage>.npz) -> `stage.Stage` fitted entry by
entry, each entry saved as it finishes (models/<stage>/) -> the stage's prediction ->
submissions/<stage>_submission.csv. The training and predicting themselves are `pertnet.stage`'s.
"""
import time
import uuid
from pathlib import Path

import numpy as np

from pertnet import (bundle, cluster, crossval, data, defaults, evaluation, intervals, locks, memory, outputs,
                     schemas, stopping, tablefile, version)
from pertnet.errors import UserError
from pertnet.features import Vocabulary
from pertnet.labels import Labels
from pertnet.files import load_npz, require_writable, save_npz
from pertnet.estimator import PertNet
from pertnet.stage import encode_blocks


def generate_demo(options, log=print):
    """With --demo: the synthetic demo dataset in the data folder, generated on first use (also as h5ad where
    --train-file names an .h5ad file that is not there yet). What every command that reads data does first."""
    if not options.demo:
        return
    folder, train_file = Path(options.data_dir), options.train_file
    wants_h5ad = train_file is not None and data.is_h5ad(train_file) and not train_file.is_file()
    if wants_h5ad or not (folder / data.TRAIN_FILE).is_file():
        from pertnet import synthetic  # SciPy and h5py: loaded only where the demo is made

        log(f"generating the synthetic demo dataset in {folder}/ ...")
        synthetic.generate(folder, as_h5ad=wants_h5ad)


def prepared_path(data_dir, stage):
    return Path(data_dir) / "prepared" / f"{stage}.npz"


def preparing(options):
    """The lock on the stage's prepared training set, for prepare_data (pertnet/locks.py)."""
    path = prepared_path(options.data_dir, options.stage)
    return locks.hold(path.with_name(f".{options.stage}.lock"),
                      f"{path} is being written by {{holder}}; one run per folder: wait for it to end, "
                      "or give this run another --data-dir")


def training(options):
    """The lock on the stage's models folder, for train (exclusive)."""
    folder = bundle.stage_dir(options.models_dir, options.stage)
    return locks.hold(folder / ".lock", f"{folder}/ is being written by {{holder}}; one run per folder: wait "
                                        "for it to end, or give this run another --models-dir")


def reading_models(options):
    """A shared lock on the stage's models folder, for predict: not while the stage is being trained."""
    folder = bundle.stage_dir(options.models_dir, options.stage)
    return locks.hold(folder / ".lock", f"{folder}/ is being trained by {{holder}}; predict once it has "
                                        "finished", exclusive=False)


def prepare(options, log=print):
    """Read and validate the inputs; write the stage's training set and encoded test pairs.

    With an h5ad training file no sample_submission.csv is needed (the gene order is its var_names).
    """
    data_dir, stage = options.data_dir, options.stage
    train_path = data.training_file(data_dir, options.train_file)
    from_h5ad = data.is_h5ad(train_path)
    needed = () if options.train_file is not None else (train_path.name,)
    data.require_inputs(data_dir, (*needed, data.ID_MAP_FILE) + (() if from_h5ad else (data.SAMPLE_FILE,)))
    require_writable(prepared_path(data_dir, stage).parent, "--data-dir")
    with preparing(options):
        return _prepare(options, train_path, from_h5ad, log)


def _prepare(options, train_path, from_h5ad, log):
    data_dir, stage = options.data_dir, options.stage
    labels = options.label_columns()
    started = time.perf_counter()
    pairs, genes, blocks, dataset_id = data.training_values(train_path, labels, options.layer)  # by blocks of genes
    id_map = data.read_id_map(data_dir / data.ID_MAP_FILE, labels)
    if not from_h5ad:
        order = data.read_gene_order(data_dir / data.SAMPLE_FILE, id_map, log)
        data.check_same_genes(order, genes, data_dir / data.SAMPLE_FILE, train_path.name)
    Vocabulary().fit(pairs.cell_type, pairs.sm_name).transform(
        id_map.cell_type, id_map.sm_name, source=str(data_dir / data.ID_MAP_FILE))
    memory.require_prepare(len(pairs), len(genes), f"{train_path}")
    out = prepared_path(data_dir, stage)
    try:
        pseudolabels = outputs.pseudolabels(stage, options.submissions_dir, id_map, genes, out.parent, log)
        targets_file = out.with_name(f"{stage}.targets.{uuid.uuid4().hex[:12]}.npy")  # named in the .npz: a pair
        log(f"[{stage}] reading {train_path} ({len(pairs)} rows x {len(genes)} genes) a block of "
            f"{tablefile.genes_at_once(len(pairs))} genes at a time -> {targets_file}")
        shape = (len(pairs) + (0 if pseudolabels is None else len(id_map)), len(genes))
        with tablefile.TableWriter(targets_file, shape, log) as writer:
            training_set = encode_blocks(pairs, genes, blocks, writer, options.seed, pseudolabels, labels.as_json())
    finally:
        for table in out.parent.glob(f".{stage}.pseudolabels.*.npy"):  # in the targets now (or a killed run's)
            table.unlink()
    del training_set["train_targets"]
    vocab = Vocabulary.from_labels(training_set["vocabulary"])
    try:
        save_npz(out, **training_set, targets_file=np.asarray(targets_file.name),
                 test_inputs=vocab.transform(id_map.cell_type, id_map.sm_name),
                 test_ids=id_map["id"].to_numpy(), dataset_id=np.asarray(dataset_id or ""))
    except BaseException:
        targets_file.unlink()
        raise
    for stale in out.parent.glob(f"{stage}.targets.*.npy"):  # an earlier preparation's
        if stale != targets_file:
            stale.unlink()
    log(f"[{stage}] prepared {len(training_set['train_inputs'])} training rows ({training_set['pseudolabel_rows']} pseudolabels), "
        f"{len(genes)} genes, vocabulary {len(vocab)}, {len(id_map)} test pairs in "
        f"{time.perf_counter() - started:.1f}s{memory.peak_note()} -> {out}")
    return out


def load_prepared(data_dir, stage):
    """The stage's training set as prepare_data wrote it, its targets (`train_targets`) a
    pertnet/tablefile.py table read from disk by blocks."""
    path = prepared_path(data_dir, stage)
    fix = f"rerun `python -m prepare_data --stage {stage}`"
    if not path.is_file():
        raise UserError(f"{path} does not exist; run `python -m prepare_data --stage {stage}` first")
    training_set = load_npz(path, fix, schemas.PREPARED)
    targets_file = path.with_name(str(training_set["targets_file"]))
    try:
        training_set["train_targets"] = tablefile.TableFile(targets_file)
    except (OSError, ValueError) as error:
        raise UserError(f"{targets_file}: missing or damaged ({error}); {fix}") from None
    expected = (len(training_set["train_inputs"]), len(training_set["genes"]))
    table = training_set["train_targets"]
    if table.shape != expected or targets_file.stat().st_size < table.offset + 4 * expected[0] * expected[1]:
        raise UserError(f"{targets_file}: holds {training_set['train_targets'].shape} targets, not the {expected} of "
                        f"{path}; {fix}")
    return training_set


def train(options, log=print):
    """Train every entry x rep of the stage on its prepared training set, saving each entry's
    bundle as it finishes; skip entries whose bundle has the same fingerprint (unless --force).

    The unit of resumption is the entry: its reps train together and are saved together, so a
    model-rep counts as saved once its entry's bundle is complete. A stop signal (Ctrl-C,
    SIGTERM) raises Interrupted, which says how many model-reps were saved.
    """
    require_writable(bundle.stage_dir(options.models_dir, options.stage), "--models-dir")
    cluster.require_reachable(options.cluster)
    with training(options):
        _train(options, log)


def _train(options, log):
    stage_name, models_dir = options.stage, options.models_dir
    training_set = load_prepared(options.data_dir, stage_name)
    entries = options.entries()
    model = PertNet(stage_name, entries=entries, reps=options.reps, epochs=options.epochs, seed=options.seed,
                    verbose=log).start(training_set)
    stage = model.stage_
    bundle.save_shared(models_dir, stage)
    kept = []  # the entries whose bundle is complete: skipped, or saved in this run

    def status(entry):
        saved, problem = bundle.entry_state(models_dir, stage_name, entry.id, verify=not options.force)
        if not options.force and saved is not None and saved["fingerprint"] == stage.entry_fingerprint(entry):
            kept.append(entry)
            return True, (f"skipped, its {entry.reps} model-reps are saved from the same inputs, "
                          "hyperparameters and seed")
        if not bundle.entry_dir(models_dir, stage_name, entry.id).exists():
            return False, ""
        why = (f"its bundle is incomplete: {problem}" if saved is None else "--force" if options.force
               else f"its bundle was made by pertnet {saved.get('version', 'before 1.1.0')}, this is {version.VERSION}"
               if saved.get("version") != version.VERSION
               else "its bundle was made from other inputs, hyperparameters or seed")
        return False, f"retraining ({why}); "

    def save(entry, rep_weights):
        bundle.save_entry(models_dir, stage, entry, rep_weights, options.configuration())
        kept.append(entry)

    with stopping.saying_what_was_kept(lambda: f"{sum(e.reps for e in kept)} of {sum(e.reps for e in entries)} "
                                               f"model-reps saved in {bundle.stage_dir(models_dir, stage_name)}/; "
                                               "rerun the same command to resume"):
        with cluster.executor(options.workers, options.cluster, log) as executor:
            model.train(training_set, status, save, executor)  # stops at the end of an epoch or between entries
        stopping.check()  # a signal while the last entry was saved
    log(f"[{stage_name}] bundles -> {bundle.stage_dir(models_dir, stage_name)}/")


def predict(options, log=print):
    """Predict the id_map pairs with the stage's bundles and write the submission.

    Columns follow sample_submission.csv where the data folder has one, else the genes the
    models were trained on (an h5ad training file's var_names). --output-format names the file's
    format (pertnet/outputs.py): csv writes <stage>_submission.csv, h5ad the benchmark's
    <stage>_prediction.h5ad.
    """
    data.require_inputs(options.data_dir, (data.ID_MAP_FILE,))
    require_writable(options.submissions_dir, "--submissions-dir")
    with reading_models(options):
        return _predict(options, log)


def _predict(options, log):
    data_dir, stage_name = options.data_dir, options.stage
    stage = PertNet.load(options.models_dir, stage_name, options.entries(), options.configuration()).stage_
    id_map = data.read_id_map(data_dir / data.ID_MAP_FILE, _recorded_labels(options, stage))
    trained_on = f"the genes the models in {bundle.stage_dir(options.models_dir, stage_name)}/ were trained on"
    order = stage.genes
    if (data_dir / data.SAMPLE_FILE).is_file():
        order = data.read_gene_order(data_dir / data.SAMPLE_FILE, id_map, log)
        data.check_same_genes(order, stage.genes, data_dir / data.SAMPLE_FILE, trained_on)
    inputs = stage.encode_pairs(id_map.cell_type, id_map.sm_name, source=f"{data_dir / data.ID_MAP_FILE} (against "
                                f"the vocabulary of the models in {bundle.stage_dir(options.models_dir, stage_name)}/)")
    _note_other_pairs(stage, inputs, data_dir / data.ID_MAP_FILE, log)
    started = time.perf_counter()
    position = {gene: i for i, gene in enumerate(stage.genes)}
    column = [position[gene] for gene in order]
    fmt = outputs.FORMATS[options.output_format]
    if options.interval is None:  # by blocks of pairs, written as they come
        blocks = ((rows, values, None) for rows, values in stage.predict_blocks(inputs, log=log))
    else:
        blocks = _calibration(options).predict_blocks(stage, inputs, options.interval, _calibration_path(options), log)
    out = fmt.write(outputs.path(options.submissions_dir, stage_name, fmt.name), id_map, order,
                    _reordered(blocks, column), stage, options.interval, log)
    with_bounds = "" if options.interval is None else f", with bounds at {options.interval:g} beside it"
    log(f"[{stage_name}] predicted {len(id_map)} pairs x {len(order)} genes with {len(stage.entries)} entries "
        f"in {time.perf_counter() - started:.1f}s -> {out}{with_bounds}")
    return out


def _reordered(blocks, column):
    """(rows, values, bounds or None) blocks with their genes in `column` order (each gene's values contiguous, as
    the writers take them), each block let go once reordered."""
    for rows, values, bounds in blocks:
        values = values.T[column].T
        bounds = None if bounds is None else bounds.columns(column)
        yield rows, values, bounds
        del values, bounds


def _recorded_labels(options, stage):
    """The label columns the models were trained with; label options that name others are refused."""
    recorded = Labels.from_json(stage.label_columns)
    if options.labels is not None and not options.labels.same_columns(recorded):
        raise UserError(f"the models in {bundle.stage_dir(options.models_dir, stage.name)}/ were trained with the "
                        f"{recorded.describe()}, not the {options.labels.describe()}; leave the label options out "
                        "(the models' are used) or retrain with these")
    return recorded


def _calibration_path(options):
    return bundle.calibration_path(options.models_dir, options.stage)


def _calibration(options):
    """The stage's calibration, for --interval (a one-line error where there is none)."""
    return intervals.Calibration.load(_calibration_path(options), options.stage)


def _calibrated(options):
    """Whether the stage's models have a calibration that fits them and the level (else repro makes one)."""
    try:
        stage = PertNet.load(options.models_dir, options.stage, options.entries(), options.configuration()).stage_
        _calibration(options).require_fit(stage, options.interval, _calibration_path(options))
    except UserError:
        return False
    return True


def _note_other_pairs(stage, inputs, id_map_path, log):
    """A stage fitted on pseudolabels of some pairs, asked for others, says so: its models learnt those
    pairs from the stage before; a new pair gets no such help (its prediction is still the models')."""
    fitted = set(map(tuple, np.asarray(stage.pseudolabel_pairs).tolist()))
    if not fitted:
        return
    other = sum(pair not in fitted for pair in map(tuple, inputs.tolist()))
    if other:
        log(f"[{stage.name}] note: {other} of the {len(inputs)} pairs in {id_map_path} are not among the "
            f"{len(fitted)} whose pseudolabels these models were fitted on; they are predicted without that help "
            f"(for a new id_map, rerun `python -m repro --stage {stage.name}` with it for the method as designed)")


def repro(options, log=print):
    """prepare -> train -> predict, then the score table where the data folder has a truth file;
    a stage that trains on pseudolabels runs their stage first (whose submission, their source,
    is always the CSV)."""
    for folder, option in ((options.data_dir, "--data-dir"), (options.models_dir, "--models-dir"),
                           (options.submissions_dir, "--submissions-dir")):
        require_writable(folder, option)  # before hours of training, not after
    cluster.require_reachable(options.cluster)
    with preparing(options), training(options):  # for the whole chain: no other run slips in between its steps
        return _repro(options, log)


def _repro(options, log):
    if options.stage in defaults.PSEUDOLABEL_SOURCE:
        repro(options.replace(stage=defaults.PSEUDOLABEL_SOURCE[options.stage], output_format="csv", interval=None), log)
    prepare(options, log)
    stopping.check()  # between the steps: each one's files are complete
    train(options, log)  # which checks at its end
    if options.interval is not None and not _calibrated(options):
        log(f"[{options.stage}] calibrating the intervals: the stage's cross-validation (python -m evaluate --cv)")
        evaluation.show(crossval.cross_validate(options, log=log), log=log)
        stopping.check()
    out = predict(options, log)
    truth = evaluation.truth_file(options.data_dir)
    if truth is not None:
        evaluation.show(evaluation.score_submission(out, truth, options.data_dir, options.stage,
                                                    options.train_file, options.layer, log,
                                                    options.label_columns()), log=log)
    return out
