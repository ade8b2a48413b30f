"""A trained `stage.Stage` on disk, and loading it back. Nothing here reads training data.

models/<stage>/shared.npz (schemas.BUNDLE_SHARED) holds what every entry shares; models/<stage>/
model_<id>/ one entry's bundle: rep_<r>.npz per rep and entry.json (schemas.BUNDLE_ENTRY), written
last, so a bundle is complete when entry.json and all its rep files exist. A model-rep is one rep
file of a complete bundle; the reps of an entry are trained and saved together, so an
interrupted entry is retrained whole.
"""
import json
from pathlib import Path

import numpy as np

from pertnet import architectures, schemas, version
from pertnet.errors import UserError
from pertnet.entries import Entry
from pertnet.files import load_npz, save_npz, write_text
from pertnet.stage import Stage
from pertnet.targets import SVDCodec, cap_n_dim


def stage_dir(models_dir, stage):
    return Path(models_dir) / stage


def calibration_path(models_dir, stage):
    """The stage's interval calibration (schemas.CALIBRATION), written by `evaluate --cv`."""
    return stage_dir(models_dir, stage) / "calibration.npz"


def save_shared(models_dir, stage):
    """What every entry of a `stage.Stage` shares; written at the start of each training run."""
    save_npz(stage_dir(models_dir, stage.name) / "shared.npz", genes=np.asarray(stage.genes, dtype=str),
             vocabulary=np.asarray(stage.vocabulary, dtype=str), clip_low=stage.clip_low, clip_high=stage.clip_high,
             components=stage.codec.components_, run=np.asarray(stage.run), dataset_id=np.asarray(stage.dataset_id),
             pseudolabel_pairs=stage.pseudolabel_pairs, labels=np.asarray(stage.label_columns),
             entries=np.asarray(json.dumps([entry.as_dict() for entry in stage.entries])),
             seed=np.asarray("" if stage.seed is None else str(stage.seed)))


def _recorded(models_dir, stage, name):
    """One small array of a trained stage's shared.npz as text ("" where the file predates it), None where
    models_dir has no trained stage."""
    path = stage_dir(models_dir, stage) / "shared.npz"
    if not path.is_file():
        return None
    with np.load(path) as shared:  # reads the one array
        return str(shared[name]) if name in shared.files else ""


def recorded_labels(models_dir, stage):
    """The label columns a trained stage recorded (`pertnet.labels.Labels.as_json()`; "" for the competition's)."""
    return _recorded(models_dir, stage, "labels")


def recorded_entries(models_dir, stage):
    """The entries a trained stage was trained with, as dicts in their order (None where it did not record them)."""
    text = _recorded(models_dir, stage, "entries")
    return json.loads(text) if text else None


def _retrain_hint(stage):
    return f"rerun your `python -m train --stage {stage}` command (it retrains only what is missing or stale)"


def load_shared(models_dir, stage):
    path = stage_dir(models_dir, stage) / "shared.npz"
    if not path.is_file():
        raise UserError(f"no trained models in {stage_dir(models_dir, stage)}/; run "
                        f"`python -m train --stage {stage}` first")
    return load_npz(path, _retrain_hint(stage), schemas.BUNDLE_SHARED)  # train rewrites it on every run


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
        reps, entry = int(meta["reps"]), Entry(**meta["entry"])
    except FileNotFoundError:
        return None, "no entry.json"
    except (OSError, ValueError, KeyError, TypeError):
        return None, "entry.json is damaged"
    missing = [f"rep_{rep}.npz" for rep in range(reps) if not rep_path(models_dir, stage, entry_id, rep).is_file()]
    if missing:
        return None, f"{', '.join(missing)} missing"
    if verify:
        for rep in range(reps):
            problem = _rep_file_problem(rep_path(models_dir, stage, entry_id, rep), entry, meta["vocab_size"])
            if problem:
                return None, f"rep_{rep}.npz {problem}"
    return meta, ""


def _rep_file_problem(path, entry, vocab_size):
    """Why a rep file cannot be this entry's weights ("" if it can)."""
    expected = [shape for shape, _ in architectures.weight_specs(entry, vocab_size)]
    try:
        with np.load(path) as arrays:
            shapes = [arrays[key].shape for key in sorted(arrays.files)]
    except Exception as error:  # truncated, overwritten or not an npz at all
        return f"is damaged ({type(error).__name__})"
    return "" if shapes == expected else "holds weights of another shape than the entry's network"


def save_entry(models_dir, stage, entry, rep_weights, configuration="config.py"):
    """Write every rep's weights, then entry.json last: its presence marks the bundle complete.
    configuration: where the entry came from (config.py, or a --stages file)."""
    folder = entry_dir(models_dir, stage.name, entry.id)
    (folder / "entry.json").unlink(missing_ok=True)
    for stale in [*folder.glob("rep_*.npz"), *folder.glob(".*.tmp")]:  # .tmp: left by a killed run
        stale.unlink()
    for rep, weights in enumerate(rep_weights):
        save_npz(folder / f"rep_{rep}.npz", **{f"w{i:03d}": w for i, w in enumerate(weights)})
    meta = dict(entry=entry.as_dict(), vocab_size=len(stage.vocabulary), reps=len(rep_weights), run=stage.run,
                fingerprint=stage.entry_fingerprint(entry), configuration=configuration, version=version.VERSION)
    write_text(folder / "entry.json", json.dumps(meta, indent=1))


def _complete_entry(models_dir, stage, entry_id):
    """entry.json of a complete bundle; else a UserError saying what is missing and how to remake it."""
    meta, problem = entry_state(models_dir, stage, entry_id)
    if problem:
        raise UserError(f"{entry_dir(models_dir, stage, entry_id)}/: incomplete bundle ({problem}); "
                        f"{_retrain_hint(stage)}")
    return meta


def load_stage(models_dir, name, entries, configuration="config.py"):
    """The trained `stage.Stage` of models/<name>/, once every entry's bundle is complete, from the
    run of shared.npz and from `entries` (which came from `configuration`; --reps / --epochs aside).
    Its entries are as trained; their rep weights are read when predicting asks for them."""
    shared = load_shared(models_dir, name)
    trained = []
    for entry in cap_n_dim(entries, len(shared["components"])):  # as `Stage.start` capped them to the data
        meta = _complete_entry(models_dir, name, entry.id)
        folder = entry_dir(models_dir, name, entry.id)
        if meta.get("run") != str(shared["run"]) or meta["vocab_size"] != len(shared["vocabulary"]):
            raise UserError(f"{folder}/ was trained on other inputs, vocabulary or seed than "
                            f"{stage_dir(models_dir, name)}/shared.npz (an unfinished retrain?); {_retrain_hint(name)}")
        saved = _entry(meta, models_dir, name, entry.id)
        differ = [k for k, v in entry.as_dict().items() if k not in ("reps", "epochs") and saved.as_dict().get(k) != v]
        if differ:
            raise UserError(f"{folder}/ was trained with the entry of {meta.get('configuration', 'config.py')}, "
                            f"not {configuration}'s ({', '.join(differ)} differ); pass the --stages file it was "
                            f"trained with, or retrain with this one")
        trained.append(saved)
    return Stage(name, trained, shared["genes"], shared["vocabulary"], shared["clip_low"], shared["clip_high"],
                 SVDCodec.from_components(shared["components"]), str(shared["run"]),
                 str(shared.get("dataset_id", "")), _RepWeights(models_dir, name), shared.get("pseudolabel_pairs"),
                 str(shared.get("labels", "")), int(str(shared["seed"])) if str(shared.get("seed", "")) else None)


def _entry(meta, models_dir, stage, entry_id):
    return Entry.from_dict(meta["entry"], str(entry_dir(models_dir, stage, entry_id) / "entry.json"))


class _RepWeights:
    """entry id -> one weight list per rep, read from the bundle when asked (one entry in memory at a time)."""

    def __init__(self, models_dir, stage):
        self.models_dir, self.stage = models_dir, stage

    def __getitem__(self, entry_id):
        return load_rep_weights(self.models_dir, self.stage, entry_id)[1]


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
    """One rep as the plain Keras model of its family with its trained weights, uncompiled: what
    `python -m export` saves, which must load without this package (see export.py); compile it to train."""
    from pertnet import nets  # Keras: loaded only here, so that reading bundles stays light

    meta, reps = load_rep_weights(models_dir, stage, entry_id)
    if not 0 <= rep < len(reps):
        raise UserError(f"{entry_dir(models_dir, stage, entry_id)}/ holds reps 0 to {len(reps) - 1}, not {rep}")
    model = nets.build_model(_entry(meta, models_dir, stage, entry_id), meta["vocab_size"], compile=False)
    model.set_weights(reps[rep])
    return model
