"""The stage pipeline: prepare -> train -> predict, each one function read top to bottom.

files -> validated frames -> encoded arrays (data/prepared/<stage>.npz) -> per-rep bundles
(models/<stage>/) -> per-entry medians -> stage ensemble -> submissions/<stage>_submission.csv
"""
import hashlib
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

import config
from pertnet import UserError, bundle, data, ensemble, metrics, training
from pertnet.features import Vocabulary
from pertnet.files import save_npz
from pertnet.targets import SVDCodec


def stage_entries(stage, reps=None, epochs=None):
    """The stage's entries from config.py, with --reps / --epochs overrides applied."""
    overrides = {k: v for k, v in dict(reps=reps, epochs=epochs).items() if v is not None}
    return [{**entry, **overrides} for entry in config.STAGES[stage]]


def prepared_path(data_dir, stage):
    return Path(data_dir) / "prepared" / f"{stage}.npz"


def submission_path(submissions_dir, stage):
    return Path(submissions_dir) / f"{stage}_submission.csv"


def prepare(stage, data_dir, submissions_dir, seed=config.SEED, log=print):
    """Read and validate the inputs; write the stage's encoded training and test arrays."""
    data_dir = Path(data_dir)
    data.require_inputs(data_dir)
    train = data.read_de_train(data_dir / data.TRAIN_FILE)
    id_map = data.read_id_map(data_dir / data.ID_MAP_FILE)
    genes = data.gene_columns(train)
    order = data.read_gene_order(data_dir / data.SAMPLE_FILE, id_map)
    data.check_same_genes(order, genes, data_dir / data.SAMPLE_FILE, data.TRAIN_FILE)
    clip_low, clip_high = train[genes].min().to_numpy(), train[genes].max().to_numpy()
    Vocabulary().fit(train.cell_type, train.sm_name).transform(
        id_map.cell_type, id_map.sm_name, source=str(data_dir / data.ID_MAP_FILE))

    pseudolabels = 0
    if stage in config.PSEUDOLABEL_SOURCE:
        source = config.PSEUDOLABEL_SOURCE[stage]
        path = submission_path(submissions_dir, source)
        if not path.is_file():
            raise UserError(f"{stage} trains on {source}'s predictions, but {path} does not exist; run "
                            f"`python -m repro --stage {source}` first (or `repro --stage {stage}`, which does)")
        values = data.read_submission(path, id_map, genes)
        rows = pd.concat([id_map[data.PAIR].reset_index(drop=True), pd.DataFrame(values, columns=genes)], axis=1)
        train, pseudolabels = pd.concat([train, rows], ignore_index=True), len(rows)

    train = train.sample(frac=1, random_state=seed)
    vocab = Vocabulary().fit(train.cell_type, train.sm_name)
    out = prepared_path(data_dir, stage)
    save_npz(out,
             train_inputs=vocab.transform(train.cell_type, train.sm_name),
             train_targets=train[genes].to_numpy(np.float32),
             test_inputs=vocab.transform(id_map.cell_type, id_map.sm_name),
             test_ids=id_map["id"].to_numpy(), genes=np.asarray(genes, dtype=str),
             vocabulary=np.asarray(vocab.labels_, dtype=str),
             clip_low=clip_low.astype(np.float32), clip_high=clip_high.astype(np.float32))
    log(f"[{stage}] prepared {len(train)} training rows ({pseudolabels} pseudolabels), "
        f"{len(genes)} genes, vocabulary {len(vocab)}, {len(id_map)} test pairs -> {out}")
    return out


def load_prepared(data_dir, stage):
    path = prepared_path(data_dir, stage)
    if not path.is_file():
        raise UserError(f"{path} does not exist; run `python -m prepare_data --stage {stage}` first")
    with np.load(path) as prepared:
        return {key: prepared[key] for key in prepared.files}


def fingerprint(prepared, entry, seed, stage):
    """What a bundle was made from: inputs, targets, vocabulary, hyperparameters and seed."""
    digest = hashlib.sha256()
    for key in ("train_inputs", "train_targets", "vocabulary"):
        digest.update(np.ascontiguousarray(prepared[key]).tobytes())
    digest.update(json.dumps([entry, seed, stage], sort_keys=True).encode())
    return digest.hexdigest()


def train(stage, data_dir, models_dir, seed=config.SEED, reps=None, epochs=None, force=False, log=print):
    """Train the stage on its prepared arrays (see `train_prepared`)."""
    train_prepared(stage, load_prepared(data_dir, stage), models_dir, seed, reps, epochs, force, log)


def train_prepared(stage, prepared, models_dir, seed=config.SEED, reps=None, epochs=None, force=False, log=print):
    """Train every entry x rep of the stage; skip entries whose bundle has the same fingerprint.

    prepared: the arrays prepare() writes (train_inputs, train_targets, vocabulary, genes,
    clip_low, clip_high); cross-validation passes its folds' arrays the same way.
    """
    entries = stage_entries(stage, reps, epochs)
    if reps is not None or epochs is not None:
        given = " ".join(f"--{k} {v}" for k, v in dict(reps=reps, epochs=epochs).items() if v is not None)
        log(f"[{stage}] departing from the faithful configuration: {given} overrides every entry "
            "(a quick look, not a reproduction)")
    inputs, targets = prepared["train_inputs"], prepared["train_targets"]
    vocab_size = len(prepared["vocabulary"])
    codec = SVDCodec(max(e["n_dim"] for e in entries)).fit(targets)
    bundle.save_shared(models_dir, stage, prepared["genes"], prepared["vocabulary"],
                       prepared["clip_low"], prepared["clip_high"], codec)

    progress = training.Progress(stage, sum(training.training_flops(e, len(inputs)) for e in entries), log)
    trained = skipped = 0
    for number, entry in enumerate(entries, 1):
        label = f"[{stage}] entry {entry['id']} ({number}/{len(entries)})"
        flops = training.training_flops(entry, len(inputs))
        stamp = fingerprint(prepared, entry, seed, stage)
        saved = bundle.read_entry(models_dir, stage, entry["id"])
        if not force and saved is not None and saved["fingerprint"] == stamp:
            log(f"{label}: skipped, its bundle exists and was made from the same inputs and seed")
            progress.total -= flops
            skipped += 1
            continue
        log(f"{label}: family {entry['architecture']}, {entry['reps']} reps x {entry['epochs']} epochs, "
            f"batch {entry['bs']}, n_dim {entry['n_dim']}")
        started = time.perf_counter()
        rep_weights = training.train_entry(
            entry, inputs, codec.truncate(entry["n_dim"]).transform(targets), vocab_size,
            training.rep_seeds(seed, stage, entry["id"], entry["reps"]),
            training.derive_seed(seed, stage, entry["id"], "dropout"),
            on_epoch=progress.epoch_callback(label, entry, flops))
        bundle.save_entry(models_dir, stage, entry, vocab_size, rep_weights, stamp)
        progress.done += flops
        trained += 1
        log(f"{label}: saved {entry['reps']} reps in {time.perf_counter() - started:.1f}s, "
            f"about {progress.eta()} left")
    elapsed = time.perf_counter() - progress.start
    log(f"[{stage}] trained {trained} entries, skipped {skipped}, in {elapsed:.1f}s -> "
        f"{bundle.stage_dir(models_dir, stage)}/")


def predict(stage, data_dir, models_dir, submissions_dir, log=print):
    """Ensemble the stage's bundles on the id_map pairs and write the submission."""
    data_dir = Path(data_dir)
    data.require_inputs(data_dir, (data.ID_MAP_FILE, data.SAMPLE_FILE))
    shared = bundle.load_shared(models_dir, stage)
    id_map = data.read_id_map(data_dir / data.ID_MAP_FILE)
    order = data.read_gene_order(data_dir / data.SAMPLE_FILE, id_map)
    genes = list(shared["genes"])
    data.check_same_genes(order, genes, data_dir / data.SAMPLE_FILE,
                          f"the genes the models in {bundle.stage_dir(models_dir, stage)}/ were trained on")
    vocabulary = Vocabulary.from_labels(shared["vocabulary"])
    inputs = vocabulary.transform(id_map.cell_type, id_map.sm_name, source=str(data_dir / data.ID_MAP_FILE))
    started = time.perf_counter()
    combined = ensemble_prediction(stage, models_dir, shared, inputs)
    column = {gene: i for i, gene in enumerate(genes)}
    values = combined[:, [column[g] for g in order]]
    out = data.write_submission(submission_path(submissions_dir, stage), id_map["id"], order, values)
    log(f"[{stage}] predicted {len(id_map)} pairs x {len(order)} genes with {len(config.STAGES[stage])} entries "
        f"in {time.perf_counter() - started:.1f}s -> {out}")
    return out


def ensemble_prediction(stage, models_dir, shared, inputs):
    """The stage's prediction of encoded pairs, in the bundles' gene order (SPEC.md section 5)."""
    medians, weights = [], []
    for entry in config.STAGES[stage]:
        meta, rep_weights = bundle.load_rep_weights(models_dir, stage, entry["id"])
        components = training.predict_reps(meta["entry"], rep_weights, meta["vocab_size"], inputs)
        rep_genes = bundle.entry_codec(shared, meta["entry"]).inverse_transform(components)
        medians.append(ensemble.median_over_reps(rep_genes))
        weights.append(entry["weight"])
    return ensemble.clip_to_bounds(ensemble.weighted_mean(medians, weights),
                                   shared["clip_low"], shared["clip_high"])


def score_against_truth(stage, data_dir, submissions_dir, log=print):
    """MRRMSE of the submission against de_test.parquet, beside the zeros and compound-mean baselines."""
    data_dir = Path(data_dir)
    truth = data.read_de_train(data_dir / "de_test.parquet")
    train = data.read_de_train(data_dir / data.TRAIN_FILE)
    id_map = data.read_id_map(data_dir / data.ID_MAP_FILE)
    genes = data.gene_columns(train)
    truth = truth.set_index(data.PAIR).loc[pd.MultiIndex.from_frame(id_map[data.PAIR]), genes].to_numpy()
    predicted = data.read_submission(submission_path(submissions_dir, stage), id_map, genes)
    scores = {f"{stage} submission": metrics.mrrmse(predicted, truth),
              "baseline: all zeros": metrics.mrrmse(np.zeros_like(truth), truth),
              "baseline: compound mean": metrics.mrrmse(
                  metrics.compound_mean_baseline(train, id_map, genes), truth)}
    log(f"\nMRRMSE against the truth of the {len(truth)} test pairs ({data_dir / 'de_test.parquet'}):")
    for name, value in scores.items():
        log(f"  {name:<28} {value:.4f}")
    return scores


def repro(stage, data_dir, models_dir, submissions_dir, seed=config.SEED, reps=None, epochs=None,
          force=False, log=print):
    """prepare -> train -> predict; a stage that trains on pseudolabels runs their stage first."""
    if stage in config.PSEUDOLABEL_SOURCE:
        repro(config.PSEUDOLABEL_SOURCE[stage], data_dir, models_dir, submissions_dir, seed, reps, epochs, force, log)
    prepare(stage, data_dir, submissions_dir, seed, log)
    train(stage, data_dir, models_dir, seed, reps, epochs, force, log)
    out = predict(stage, data_dir, models_dir, submissions_dir, log)
    if (Path(data_dir) / "de_test.parquet").is_file():
        score_against_truth(stage, data_dir, submissions_dir, log)
    return out
