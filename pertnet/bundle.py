"""What a trained stage is on disk, and loading it back. Nothing here reads training data.

models/<stage>/
    shared.npz          what every entry and rep shares:
        genes           str   (genes,)       gene order of the columns the models predict
        vocabulary      str   (labels,)      sorted cell types and compounds; a label's index is its code
        clip_low/high   f32   (genes,)       per-gene min / max of the raw de_train (section 5, step 3)
        components      f32   (k, genes)     SVD basis; an entry with n_dim uses the first n_dim rows
    model_<id>/
        entry.json      the entry's hyperparameters (overrides applied), vocab_size, reps, fingerprint
        rep_<r>.npz     one rep's weights: w000, w001, ... in `nets.build_model(...).get_weights()` order
"""
import json
from pathlib import Path

import numpy as np

from pertnet import UserError, nets
from pertnet.files import save_npz, write_text
from pertnet.targets import SVDCodec


def stage_dir(models_dir, stage):
    return Path(models_dir) / stage


def save_shared(models_dir, stage, genes, vocabulary, clip_low, clip_high, codec):
    save_npz(stage_dir(models_dir, stage) / "shared.npz", genes=np.asarray(genes, dtype=str),
             vocabulary=np.asarray(vocabulary, dtype=str), clip_low=clip_low, clip_high=clip_high,
             components=codec.components_)


def load_shared(models_dir, stage):
    path = stage_dir(models_dir, stage) / "shared.npz"
    if not path.is_file():
        raise UserError(f"no trained models in {stage_dir(models_dir, stage)}/; run "
                        f"`python -m train --stage {stage}` first")
    with np.load(path) as shared:
        return {key: shared[key] for key in shared.files}


def entry_dir(models_dir, stage, entry_id):
    return stage_dir(models_dir, stage) / f"model_{entry_id}"


def read_entry(models_dir, stage, entry_id):
    """The entry.json of a complete bundle, or None if the entry was never (completely) saved."""
    path = entry_dir(models_dir, stage, entry_id) / "entry.json"
    return json.loads(path.read_text()) if path.is_file() else None


def save_entry(models_dir, stage, entry, vocab_size, rep_weights, fingerprint):
    """Write every rep's weights, then entry.json last: its presence marks the bundle complete."""
    folder = entry_dir(models_dir, stage, entry["id"])
    (folder / "entry.json").unlink(missing_ok=True)
    for stale in folder.glob("rep_*.npz"):
        stale.unlink()
    for rep, weights in enumerate(rep_weights):
        save_npz(folder / f"rep_{rep}.npz", **{f"w{i:03d}": w for i, w in enumerate(weights)})
    meta = dict(entry=entry, vocab_size=vocab_size, reps=len(rep_weights), fingerprint=fingerprint)
    write_text(folder / "entry.json", json.dumps(meta, indent=1))


def load_rep_weights(models_dir, stage, entry_id):
    """(entry.json contents, one weight list per rep)."""
    meta = read_entry(models_dir, stage, entry_id)
    if meta is None:
        raise UserError(f"{entry_dir(models_dir, stage, entry_id)}/ holds no complete bundle; run "
                        f"`python -m train --stage {stage}`")
    reps = []
    for rep in range(meta["reps"]):
        with np.load(entry_dir(models_dir, stage, entry_id) / f"rep_{rep}.npz") as weights:
            reps.append([weights[key] for key in sorted(weights.files)])
    return meta, reps


def load_keras_model(models_dir, stage, entry_id, rep):
    """One rep as the plain Keras model of its family (for users who want the network itself)."""
    meta, reps = load_rep_weights(models_dir, stage, entry_id)
    model = nets.build_model(meta["entry"], meta["vocab_size"])
    model.set_weights(reps[rep])
    return model


def entry_codec(shared, entry):
    return SVDCodec.from_components(shared["components"]).truncate(entry["n_dim"])
