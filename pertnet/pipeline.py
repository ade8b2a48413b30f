"""The stage pipeline: prepare -> train -> predict, each one function read top to bottom.

files -> validated frames -> encoded arrays (data/prepared/<stage>.npz) -> per-rep bundles
(models/<stage>/) -> per-entry medians -> stage ensemble -> submissions/<stage>_submission.csv
"""
import gc
import hashlib
import json
import signal
import time
from pathlib import Path

import numpy as np
import pandas as pd

import config
from pertnet import Interrupted, UserError, architectures, bundle, data, ensemble
from pertnet.features import Vocabulary
from pertnet.files import load_npz, require_writable, save_npz
from pertnet.targets import SVDCodec


def stage_entries(stage, reps=None, epochs=None):
    """The stage's entries from config.py, with --reps / --epochs overrides applied."""
    overrides = {k: v for k, v in dict(reps=reps, epochs=epochs).items() if v is not None}
    return [{**entry, **overrides} for entry in config.STAGES[stage]]


def prepared_path(data_dir, stage):
    return Path(data_dir) / "prepared" / f"{stage}.npz"


def submission_path(submissions_dir, stage):
    return Path(submissions_dir) / f"{stage}_submission.csv"


def prediction_path(submissions_dir, stage):
    """Where `predict --output-format h5ad` writes (the benchmark's prediction format)."""
    return Path(submissions_dir) / f"{stage}_prediction.h5ad"


def prepare(stage, data_dir, submissions_dir, seed=config.SEED, train_file=None, layer=None, log=print):
    """Read and validate the inputs; write the stage's encoded training and test arrays.

    train_file: de_train.parquet or a benchmark .h5ad (default: found in data_dir); layer: the
    h5ad layer of the targets. With h5ad no sample_submission.csv is needed (var_names order).
    """
    data_dir = Path(data_dir)
    train_path = data.training_file(data_dir, train_file)
    from_h5ad = train_path.suffix == ".h5ad"
    needed = () if train_file is not None else (train_path.name,)
    data.require_inputs(data_dir, (*needed, data.ID_MAP_FILE) + (() if from_h5ad else (data.SAMPLE_FILE,)))
    require_writable(prepared_path(data_dir, stage).parent, "--data-dir")
    train, dataset_id = data.read_training(train_path, layer)
    id_map = data.read_id_map(data_dir / data.ID_MAP_FILE)
    genes = data.gene_columns(train.columns)
    if not from_h5ad:
        order = data.read_gene_order(data_dir / data.SAMPLE_FILE, id_map)
        data.check_same_genes(order, genes, data_dir / data.SAMPLE_FILE, train_path.name)
    Vocabulary().fit(train.cell_type, train.sm_name).transform(
        id_map.cell_type, id_map.sm_name, source=str(data_dir / data.ID_MAP_FILE))

    pseudolabels = pseudolabel_rows(stage, submissions_dir, id_map, genes)
    arrays = encode_training(train, genes, seed, pseudolabels)
    vocab = Vocabulary.from_labels(arrays["vocabulary"])
    out = prepared_path(data_dir, stage)
    save_npz(out, **arrays, test_inputs=vocab.transform(id_map.cell_type, id_map.sm_name),
             test_ids=id_map["id"].to_numpy(), dataset_id=np.asarray(dataset_id or ""))
    log(f"[{stage}] prepared {len(arrays['train_inputs'])} training rows ({len(pseudolabels)} pseudolabels), "
        f"{len(genes)} genes, vocabulary {len(vocab)}, {len(id_map)} test pairs -> {out}")
    return out


def pseudolabel_rows(stage, submissions_dir, id_map, genes):
    """The stage's pseudolabels: its source stage's submission as rows with id_map's pairs (empty if none)."""
    if stage not in config.PSEUDOLABEL_SOURCE:
        return pd.DataFrame(columns=data.PAIR)  # no rows; 18,211 empty gene columns took seconds to make
    source = config.PSEUDOLABEL_SOURCE[stage]
    path = submission_path(submissions_dir, source)
    if not path.is_file():
        raise UserError(f"{stage} trains on {source}'s predictions, but {path} does not exist; run "
                        f"`python -m repro --stage {source}` first (or `repro --stage {stage}`, which does)")
    values = data.read_submission(path, id_map, genes)
    return pd.concat([id_map[data.PAIR].reset_index(drop=True), pd.DataFrame(values, columns=genes)], axis=1)


def encode_training(train, genes, seed, pseudolabels):
    """The training arrays train_prepared() takes, from de_train rows (which alone set the clip
    bounds) plus pseudolabel rows: shuffled once with `seed`, labels encoded with their vocabulary."""
    rows = pd.concat([train, pseudolabels], ignore_index=True) if len(pseudolabels) else train
    rows = rows.sample(frac=1, random_state=seed)
    vocab = Vocabulary().fit(rows.cell_type, rows.sm_name)
    return dict(train_inputs=vocab.transform(rows.cell_type, rows.sm_name),
                train_targets=rows[genes].to_numpy(np.float32), genes=np.asarray(genes, dtype=str),
                vocabulary=np.asarray(vocab.labels_, dtype=str),
                clip_low=train[genes].min().to_numpy(np.float32), clip_high=train[genes].max().to_numpy(np.float32))


def load_prepared(data_dir, stage):
    path = prepared_path(data_dir, stage)
    if not path.is_file():
        raise UserError(f"{path} does not exist; run `python -m prepare_data --stage {stage}` first")
    return load_npz(path, f"rerun `python -m prepare_data --stage {stage}`")


def run_fingerprint(prepared, seed, stage):
    """What every bundle of a training run shares: training arrays, genes, vocabulary, seed and stage."""
    digest = hashlib.sha256()
    for key in ("train_inputs", "train_targets", "genes", "vocabulary"):
        digest.update(np.ascontiguousarray(prepared[key]).tobytes())
    digest.update(json.dumps([seed, stage]).encode())
    return digest.hexdigest()


def fingerprint(run, entry):
    """What one entry's bundle was made from: its run's fingerprint and its hyperparameters."""
    return hashlib.sha256(json.dumps([run, entry], sort_keys=True).encode()).hexdigest()


def train(stage, data_dir, models_dir, seed=config.SEED, reps=None, epochs=None, force=False, log=print):
    """Train the stage on its prepared arrays (see `train_prepared`)."""
    train_prepared(stage, load_prepared(data_dir, stage), models_dir, seed, reps, epochs, force, log)


def train_prepared(stage, prepared, models_dir, seed=config.SEED, reps=None, epochs=None, force=False, log=print):
    """Train every entry x rep of the stage; skip entries whose bundle has the same fingerprint.

    The unit of resumption is the entry: its reps train together and are saved together, so a
    model-rep counts as saved once its entry's bundle is complete. A stop signal (Ctrl-C,
    SIGTERM) raises Interrupted, which says how many model-reps were saved.

    prepared: the arrays prepare() writes (train_inputs, train_targets, vocabulary, genes,
    clip_low, clip_high); cross-validation passes its folds' arrays the same way.
    """
    from pertnet import training  # TensorFlow loads only in the commands that train

    require_writable(bundle.stage_dir(models_dir, stage), "--models-dir")
    entries = stage_entries(stage, reps, epochs)
    if reps is not None or epochs is not None:
        given = " ".join(f"--{k} {v}" for k, v in dict(reps=reps, epochs=epochs).items() if v is not None)
        log(f"[{stage}] departing from the faithful configuration: {given} overrides every entry "
            "(a quick look, not a reproduction)")
    inputs, targets = prepared["train_inputs"], prepared["train_targets"]
    vocab_size = len(prepared["vocabulary"])
    codec = SVDCodec(max(e["n_dim"] for e in entries)).fit(targets)
    run = run_fingerprint(prepared, seed, stage)
    bundle.save_shared(models_dir, stage, prepared["genes"], prepared["vocabulary"],
                       prepared["clip_low"], prepared["clip_high"], codec, run, prepared.get("dataset_id", ""))

    progress = training.Progress(stage, sum(training.training_flops(e, len(inputs)) for e in entries), log)
    trained, skipped = [], []
    try:
        for number, entry in enumerate(entries, 1):
            label = f"[{stage}] entry {entry['id']} ({number}/{len(entries)})"
            flops = training.training_flops(entry, len(inputs))
            stamp = fingerprint(run, entry)
            saved, problem = bundle.entry_state(models_dir, stage, entry["id"], verify=not force)
            if not force and saved is not None and saved["fingerprint"] == stamp:
                log(f"{label}: skipped, its {entry['reps']} model-reps are saved from the same inputs, "
                    "hyperparameters and seed")
                progress.total -= flops
                skipped.append(entry)
                continue
            if saved is None:
                why = f"its bundle is incomplete: {problem}"
            else:
                why = "--force" if force else "its bundle was made from other inputs, hyperparameters or seed"
            retraining = f"retraining ({why}); " if bundle.entry_dir(models_dir, stage, entry["id"]).exists() else ""
            log(f"{label}: {retraining}family {entry['architecture']}, {entry['reps']} reps x "
                f"{entry['epochs']} epochs, batch {entry['bs']}, n_dim {entry['n_dim']}")
            started = time.perf_counter()
            rep_weights = training.train_entry(
                entry, inputs, codec.truncate(entry["n_dim"]).transform(targets), vocab_size,
                training.rep_seeds(seed, stage, entry["id"], entry["reps"]),
                on_epoch=progress.epoch_callback(label, entry, flops))
            bundle.save_entry(models_dir, stage, entry, vocab_size, rep_weights, run, stamp)
            gc.collect()  # the entry's traced graph sits in reference cycles: free it now, memory stays flat
            progress.done += flops
            trained.append(entry)
            log(f"{label}: saved {entry['reps']} reps in {time.perf_counter() - started:.1f}s, "
                f"about {progress.eta()} left{progress.peak_memory()}")
    except KeyboardInterrupt as stop:  # a stop signal: at the end of an epoch, or while saving (atomic files)
        saved_reps = sum(e["reps"] for e in trained + skipped)
        raise Interrupted(getattr(stop, "signum", signal.SIGINT),
                          f"{saved_reps} of {sum(e['reps'] for e in entries)} model-reps saved in "
                          f"{bundle.stage_dir(models_dir, stage)}/; rerun the same command to resume") from None
    elapsed = time.perf_counter() - progress.start
    kept = f" (entries {', '.join(e['id'] for e in skipped)})" if skipped else ""
    log(f"[{stage}] trained {len(trained)} entries ({sum(e['reps'] for e in trained)} model-reps), skipped "
        f"{len(skipped)} already saved ({sum(e['reps'] for e in skipped)} model-reps){kept}, in {elapsed:.1f}s -> "
        f"{bundle.stage_dir(models_dir, stage)}/")


def predict(stage, data_dir, models_dir, submissions_dir, output_format="csv", log=print):
    """Ensemble the stage's bundles on the id_map pairs and write the submission.

    Columns follow sample_submission.csv where the data folder has one, else the genes the
    models were trained on (an h5ad training file's var_names). output_format: "csv" writes
    <stage>_submission.csv, "h5ad" the benchmark's <stage>_prediction.h5ad.
    """
    data_dir = Path(data_dir)
    data.require_inputs(data_dir, (data.ID_MAP_FILE,))
    require_writable(submissions_dir, "--submissions-dir")
    shared = bundle.load_shared(models_dir, stage)
    id_map = data.read_id_map(data_dir / data.ID_MAP_FILE)
    genes = list(shared["genes"])
    order = genes
    if (data_dir / data.SAMPLE_FILE).is_file():
        order = data.read_gene_order(data_dir / data.SAMPLE_FILE, id_map)
        data.check_same_genes(order, genes, data_dir / data.SAMPLE_FILE,
                              f"the genes the models in {bundle.stage_dir(models_dir, stage)}/ were trained on")
    vocabulary = Vocabulary.from_labels(shared["vocabulary"])
    inputs = vocabulary.transform(id_map.cell_type, id_map.sm_name, source=f"{data_dir / data.ID_MAP_FILE} "
                                  f"(against the vocabulary of the models in {bundle.stage_dir(models_dir, stage)}/)")
    bundle.check_stage(models_dir, stage, [entry["id"] for entry in config.STAGES[stage]], shared)
    started = time.perf_counter()
    combined = ensemble_prediction(stage, models_dir, shared, inputs)
    column = {gene: i for i, gene in enumerate(genes)}
    values = combined[:, [column[g] for g in order]]
    if output_format == "h5ad":
        from pertnet import h5ad

        out = h5ad.write_prediction(prediction_path(submissions_dir, stage), id_map, order, values,
                                    str(shared["dataset_id"]) if "dataset_id" in shared else "")
    else:
        out = data.write_submission(submission_path(submissions_dir, stage), id_map["id"], order, values)
    log(f"[{stage}] predicted {len(id_map)} pairs x {len(order)} genes with {len(config.STAGES[stage])} entries "
        f"in {time.perf_counter() - started:.1f}s -> {out}")
    return out


def ensemble_prediction(stage, models_dir, shared, inputs):
    """The stage's prediction of encoded pairs, in the bundles' gene order (docs/method.md, section 5)."""
    def entry_median(entry):
        meta, rep_weights = bundle.load_rep_weights(models_dir, stage, entry["id"])
        components = architectures.predict(meta["entry"], [np.stack(ws) for ws in zip(*rep_weights)], inputs)
        return ensemble.decoded_median(components, bundle.entry_codec(shared, meta["entry"]).inverse_transform)

    entries = config.STAGES[stage]  # a generator: one entry's (reps, rows, genes) in memory at a time
    combined = ensemble.weighted_mean((entry_median(e) for e in entries), [e["weight"] for e in entries])
    return ensemble.clip_to_bounds(combined, shared["clip_low"], shared["clip_high"])


def repro(stage, data_dir, models_dir, submissions_dir, seed=config.SEED, reps=None, epochs=None,
          force=False, train_file=None, layer=None, output_format="csv", log=print):
    """prepare -> train -> predict; a stage that trains on pseudolabels runs their stage first
    (whose submission, their source, is always the CSV)."""
    for folder, option in ((data_dir, "--data-dir"), (models_dir, "--models-dir"),
                           (submissions_dir, "--submissions-dir")):
        require_writable(folder, option)  # before hours of training, not after
    if stage in config.PSEUDOLABEL_SOURCE:
        repro(config.PSEUDOLABEL_SOURCE[stage], data_dir, models_dir, submissions_dir, seed, reps, epochs,
              force, train_file, layer, log=log)
    prepare(stage, data_dir, submissions_dir, seed, train_file, layer, log)
    train(stage, data_dir, models_dir, seed, reps, epochs, force, log)
    out = predict(stage, data_dir, models_dir, submissions_dir, output_format, log)
    from pertnet import evaluation  # imported here: evaluation builds on this module

    truth = evaluation.truth_file(data_dir)
    if truth is not None:
        evaluation.evaluate(evaluation.score_submission(out, truth, data_dir, stage, train_file, layer, log), log=log)
    return out
