"""What a trained stage is on disk, and loading it back. Nothing here reads training data.

models/<stage>/
    shared.npz          what every entry and rep shares:
        genes           str   (genes,)       gene order of the columns the models predict
        vocabulary      str   (labels,)      sorted cell types and compounds; a label's index is its code
        clip_low/high   f32   (genes,)       per-gene min / max of the raw de_train (docs/method.md, section 5)
        components      f32   (k, genes)     SVD basis; an entry with n_dim uses the first n_dim rows
        run             str   ()             fingerprint of the training arrays, seed and stage
    model_<id>/
        entry.json      the entry's hyperparameters (overrides applied), vocab_size, reps, run (the
                        run fingerprint it was trained in) and fingerprint (run + hyperparameters)
        rep_<r>.npz     one rep's weights: w000, w001, ... in `nets.build_model(...).get_weights()` order

A bundle is complete when entry.json and all its rep files exist: entry.json is written last.
A model-rep is one rep file of a complete bundle; the reps of an entry are trained and saved
together, so an interrupted entry is retrained whole.
"""
import json
from pathlib import Path

import numpy as np

from pertnet import UserError, architectures
from pertnet.files import load_npz, save_npz, write_text
from pertnet.targets import SVDCodec


def stage_dir(models_dir, stage):
    return Path(models_dir) / stage


def save_shared(models_dir, stage, genes, vocabulary, clip_low, clip_high, codec, run, dataset_id=""):
    save_npz(stage_dir(models_dir, stage) / "shared.npz", genes=np.asarray(genes, dtype=str),
             vocabulary=np.asarray(vocabulary, dtype=str), clip_low=clip_low, clip_high=clip_high,
             components=codec.components_, run=np.asarray(run), dataset_id=np.asarray(dataset_id))


def _retrain_hint(stage):
    return f"rerun your `python -m train --stage {stage}` command (it retrains only what is missing or stale)"


def load_shared(models_dir, stage):
    path = stage_dir(models_dir, stage) / "shared.npz"
    if not path.is_file():
        raise UserError(f"no trained models in {stage_dir(models_dir, stage)}/; run "
                        f"`python -m train --stage {stage}` first")
    return load_npz(path, _retrain_hint(stage))  # train rewrites shared.npz on every run


def entry_dir(models_dir, stage, entry_id):
    return stage_dir(models_dir, stage) / f"model_{entry_id}"


def rep_path(models_dir, stage, entry_id, rep):
    return entry_dir(models_dir, stage, entry_id) / f"rep_{rep}.npz"


def entry_state(models_dir, stage, entry_id, verify=False):
    """(entry.json contents, "") for a complete bundle, else (None, what is missing or damaged).

    verify: also read every rep file back and check its weights' shapes against the entry's network
    (zip's CRC catches a flipped byte); what a train rerun does before it trusts a bundle.
    """
    try:
        meta = json.loads((entry_dir(models_dir, stage, entry_id) / "entry.json").read_text())
        reps = int(meta["reps"])
    except FileNotFoundError:
        return None, "no entry.json"
    except (OSError, ValueError, KeyError, TypeError):
        return None, "entry.json is damaged"
    missing = [f"rep_{rep}.npz" for rep in range(reps) if not rep_path(models_dir, stage, entry_id, rep).is_file()]
    if missing:
        return None, f"{', '.join(missing)} missing"
    if verify:
        for rep in range(reps):
            problem = _rep_file_problem(rep_path(models_dir, stage, entry_id, rep), meta)
            if problem:
                return None, f"rep_{rep}.npz {problem}"
    return meta, ""


def _rep_file_problem(path, meta):
    """Why a rep file cannot be this entry's weights ("" if it can)."""
    try:
        expected = [shape for shape, _ in architectures.weight_specs(meta["entry"], meta["vocab_size"])]
        with np.load(path) as arrays:
            shapes = [arrays[key].shape for key in sorted(arrays.files)]
    except Exception as error:  # truncated, overwritten, not an npz, or an entry.json without its fields
        return f"is damaged ({type(error).__name__})"
    return "" if shapes == expected else "holds weights of another shape than the entry's network"


def save_entry(models_dir, stage, entry, vocab_size, rep_weights, run, fingerprint):
    """Write every rep's weights, then entry.json last: its presence marks the bundle complete."""
    folder = entry_dir(models_dir, stage, entry["id"])
    (folder / "entry.json").unlink(missing_ok=True)
    for stale in [*folder.glob("rep_*.npz"), *folder.glob(".*.tmp")]:  # .tmp: left by a killed run
        stale.unlink()
    for rep, weights in enumerate(rep_weights):
        save_npz(folder / f"rep_{rep}.npz", **{f"w{i:03d}": w for i, w in enumerate(weights)})
    meta = dict(entry=entry, vocab_size=vocab_size, reps=len(rep_weights), run=run, fingerprint=fingerprint)
    write_text(folder / "entry.json", json.dumps(meta, indent=1))


def _complete_entry(models_dir, stage, entry_id):
    """entry.json of a complete bundle; else a UserError saying what is missing and how to remake it."""
    meta, problem = entry_state(models_dir, stage, entry_id)
    if problem:
        raise UserError(f"{entry_dir(models_dir, stage, entry_id)}/: incomplete bundle ({problem}); "
                        f"{_retrain_hint(stage)}")
    return meta


def check_stage(models_dir, stage, entry_ids, shared):
    """Before predicting: every entry's bundle is complete and from the same training run as shared.npz."""
    for entry_id in entry_ids:
        meta = _complete_entry(models_dir, stage, entry_id)
        if meta.get("run") != str(shared["run"]) or meta["vocab_size"] != len(shared["vocabulary"]):
            raise UserError(f"{entry_dir(models_dir, stage, entry_id)}/ was trained on other inputs, vocabulary "
                            f"or seed than {stage_dir(models_dir, stage)}/shared.npz (an unfinished retrain?); "
                            f"{_retrain_hint(stage)}")


def load_rep_weights(models_dir, stage, entry_id):
    """(entry.json contents, one weight list per rep)."""
    meta = _complete_entry(models_dir, stage, entry_id)
    damaged = f"{_retrain_hint(stage)}: it checks every rep file and retrains the entries with a damaged one"
    reps = []
    for rep in range(meta["reps"]):
        weights = load_npz(rep_path(models_dir, stage, entry_id, rep), damaged)
        reps.append([weights[key] for key in sorted(weights)])
    return meta, reps


def load_keras_model(models_dir, stage, entry_id, rep):
    """One rep as the plain Keras model of its family (for users who want the network itself)."""
    from pertnet import nets  # Keras: loaded only here, so that reading bundles stays light

    meta, reps = load_rep_weights(models_dir, stage, entry_id)
    model = nets.build_model(meta["entry"], meta["vocab_size"])
    model.set_weights(reps[rep])
    return model


def entry_codec(shared, entry):
    return SVDCodec.from_components(shared["components"]).truncate(entry["n_dim"])
