"""python -m export --stage S: save every rep of the stage's trained entries as a Keras model file,
models/<stage>/model_<id>_<rep>.keras, which keras.models.load_model loads without this package."""
import os
import sys
import time

import config
from pertnet import bundle, cli
from pertnet.files import atomic_path, require_writable


def main(argv=None):
    args = cli.parser(__doc__, config).parse_args(argv)
    export(cli.options(args))


def export(options, log=print):
    """Write each rep of each entry of the trained stage as a .keras file beside its bundle; files of
    reps the stage no longer has (a retrain with fewer --reps) are removed.

    The files hold the uncompiled network (`bundle.load_keras_model`): the MRRMSE loss is this
    package's function, and a file compiled with it would not load without the package.
    """
    started = time.perf_counter()
    folder = bundle.stage_dir(options.models_dir, options.stage)
    # every bundle complete and consistent, or a one-line error before anything is written
    stage = bundle.load_stage(options.models_dir, options.stage, options.entries(), options.configuration())
    require_writable(folder, "--models-dir")
    for entry in stage.entries:
        paths = [folder / f"model_{entry.id}_{rep}.keras" for rep in range(entry.reps)]
        for rep, path in enumerate(paths):
            model = bundle.load_keras_model(options.models_dir, options.stage, entry.id, rep)
            save_keras(model, path)
        for stale in set(folder.glob(f"model_{entry.id}_*.keras")) - set(paths):
            stale.unlink()
        log(f"[{stage.name}] entry {entry.id}: {entry.reps} reps of family {entry.architecture} "
            f"({model.count_params():,} parameters, {entry.n_dim} SVD components) -> {paths[0]}"
            + (f" ... {paths[-1].name}" if len(paths) > 1 else ""))
    log(f"[{stage.name}] exported {len(stage.entries)} entries ({sum(e.reps for e in stage.entries)} model-reps) "
        f"to {folder}/ in {time.perf_counter() - started:.1f}s; keras.models.load_model loads each: label codes "
        f"(rows, 2) -> SVD components, decoded by {folder}/shared.npz (vocabulary, components)")


def save_keras(model, path):
    """model.save to `path`, atomically: Keras saves only to a name ending in .keras, so it saves to
    atomic_path's temporary name plus .keras, which then takes the temporary name's place."""
    with atomic_path(path) as tmp:
        keras_tmp = tmp.with_name(f"{tmp.name}.keras")
        try:
            model.save(keras_tmp)
            os.replace(keras_tmp, tmp)
        finally:
            keras_tmp.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(cli.run(main))
