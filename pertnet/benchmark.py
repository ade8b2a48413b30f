"""python -m pertnet.benchmark: the method as an Open Problems perturbation-prediction benchmark component.

It takes the benchmark's method arguments (copied in tests/benchmark_api/method_arguments.json; the viash
component is pertnet/config.vsh.yaml), runs a stage end to end as `python -m repro` does (stage_2 runs
stage_1 first) in a temporary folder, and writes the prediction h5ad at --output. --stage, --stages,
--epochs, --interval, --cell_type_column and --perturbation_columns are pertnet's own additions. The stages are those the other commands train:
the repository's config.py where it is importable (run from the repository's root, or with it on
PYTHONPATH as the viash component is), else the package's (pertnet/defaults.py); or a --stages file.
"""
import importlib
import shutil
import sys
import tempfile
from pathlib import Path

from pertnet import cli, data, defaults, outputs, pipeline
from pertnet.errors import Interrupted, UserError
from pertnet.labels import Labels
from pertnet.entries import read_stages
from pertnet.files import atomic_path, require_writable
from pertnet.options import Options

## VIASH START
par = None  # viash (pertnet/config.vsh.yaml) replaces this block with a dict of the component's arguments
## VIASH END


def parser():
    p = cli.Parser(tensorflow=True, prog="python -m pertnet.benchmark", description=__doc__.split("\n")[0])
    p.add_argument("--de_train", type=Path,
                   help="the benchmark's de_train.h5ad (optional in the benchmark's interface; this method needs it)")
    p.add_argument("--id_map", type=Path, required=True, help="id_map.csv: the pairs to predict, in output order")
    p.add_argument("--layer", default="clipped_sign_log10_pval",
                   help="the de_train layer the networks train on (default %(default)s)")
    p.add_argument("--output", type=Path, required=True, help="the prediction h5ad to write")
    p.add_argument("--output_model", type=Path,
                   help="keep the trained models in this folder (default: a temporary folder, removed at the end); "
                        "a rerun with the same folder skips the entries already trained")
    p.add_argument("--reps", type=cli.positive_int,
                   help="reps of every entry (default: as configured, 10 in stage_1 and stage_2, the benchmark's "
                        "default); another count departs from the original")
    p.add_argument("--stage", choices=defaults.STAGE_NAMES, default="stage_2",
                   help="the stage to run (default %(default)s, the method the benchmark runs)")
    p.add_argument("--cell_type_column", default="cell_type",
                   help="the de_train obs key and id_map column naming the cell type (default %(default)s)")
    p.add_argument("--perturbation_columns", type=cli.column_list, default=("sm_name",), metavar="A,B",
                   help="the obs keys and id_map columns naming the perturbation, e.g. sm_name,dose: each combination "
                        "is one label (default sm_name)")
    p.add_argument("--stages", type=Path, metavar="FILE",
                   help="take the stages' entries from this file (what python -m tune writes) instead of config.py")
    p.add_argument("--epochs", type=cli.positive_int,
                   help="override every entry's epochs (departs from the original; for quick runs)")
    p.add_argument("--interval", type=cli.coverage_level,
                   help="also write bounds at this coverage level (e.g. 0.9) as the layers lower and upper, and each "
                        "pair's uncertainty score as obs uncertainty; calibrated by the stage's cross-validation")
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    _check(args)
    stages = _configured_stages()
    with tempfile.TemporaryDirectory(prefix="pertnet-benchmark-") as folder:
        work = Path(folder)
        id_map = work / "data" / data.ID_MAP_FILE  # where the pipeline looks for it
        id_map.parent.mkdir()
        try:
            shutil.copyfile(args.id_map, id_map)
        except OSError as error:
            raise UserError(f"argument --id_map: {args.id_map}: cannot read it ({error.strerror})") from None
        options = Options(stage=args.stage, data_dir=id_map.parent, models_dir=args.output_model or work / "models",
                          submissions_dir=work / "submissions", epochs=args.epochs, train_file=args.de_train,
                          layer=args.layer, output_format=outputs.BENCHMARK, interval=args.interval,
                          stages_file=args.stages, stages=stages,
                          labels=Labels(args.cell_type_column, args.perturbation_columns))
        options = options.replace(reps=_departing_reps(options, args.reps))
        try:
            prediction = pipeline.repro(options)
        except UserError as error:  # name the user's id_map, not its copy
            raise UserError(str(error).replace(str(id_map), str(args.id_map))) from None
        except Interrupted as stop:
            if args.output_model is None:
                stop.kept = ("the models were in a temporary folder, now removed; pass --output_model DIR to keep "
                             "them, and rerun with it to resume")
            raise
        with atomic_path(args.output) as tmp:
            shutil.copyfile(prediction, tmp)
    print(f"[{args.stage}] prediction -> {args.output}")


def _check(args):
    """The paths, before any training: one line naming the argument."""
    if args.de_train is None:
        raise UserError("argument --de_train: this method trains on the benchmark's de_train.h5ad; give its path")
    for option, path in (("--de_train", args.de_train), ("--id_map", args.id_map)):
        if not path.is_file():
            raise UserError(f"argument {option}: no file {path}")
    if not data.is_h5ad(args.de_train):
        raise UserError(f"argument --de_train: {args.de_train} is not an .h5ad file (the benchmark's de_train.h5ad)")
    if args.output.is_dir():
        raise UserError(f"argument --output: {args.output} is a folder; give the prediction file's path")
    require_writable(args.output.parent, "--output")
    if args.output_model is not None:
        require_writable(args.output_model, "--output_model")
    if args.stages is not None:
        read_stages(args.stages)  # a bad file: one line, before any work


def _configured_stages():
    """The repository's config.py stage table where it is importable, else None (the package's)."""
    try:
        config = importlib.import_module("config")
    except ImportError:
        return None
    return getattr(config, "STAGES", None)


def _departing_reps(options, reps):
    """--reps as an override, or None where it is every entry's configured count: the benchmark always
    passes --reps (default 10, the count of stage_1 and stage_2), and only another count departs."""
    stages = (options.stage, defaults.PSEUDOLABEL_SOURCE.get(options.stage, options.stage))
    configured = {entry.reps for name in stages for entry in options.replace(stage=name).entries()}
    return None if configured == {reps} else reps


def _viash_argv(arguments):
    """The command line that viash's `par` stands for (an argument not given is None there)."""
    return [text for name, value in arguments.items() if value is not None for text in (f"--{name}", str(value))]


if __name__ == "__main__":
    sys.exit(cli.run(main, None if par is None else _viash_argv(par)))
