"""Shared command-line options, and the one place that turns errors into one-line messages."""
import argparse
import contextlib
import signal
import sys
from pathlib import Path

from pertnet import intervals, outputs, stopping
from pertnet.errors import UserError
from pertnet.quiet import import_tensorflow_quietly
from pertnet.version import VERSION
from pertnet.entries import read_stages
from pertnet.labels import REPLICATES, Labels
from pertnet.options import Options


def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def coverage_level(text):
    """--interval's value: a coverage level the calibration serves (pertnet/intervals.py)."""
    problem = intervals.level_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return float(text)


def column_list(text):
    """A comma-separated list of column names (--perturbation-columns, --ignore-columns)."""
    names = [name.strip() for name in text.split(",")]
    if "" in names:
        raise argparse.ArgumentTypeError(f"give column names separated by commas, e.g. sm_name,dose; got {text!r}")
    return tuple(names)


class Parser(argparse.ArgumentParser):
    """argparse, but a bad option is a UserError: one line on stderr (no usage block), exit code 2.
    Once the options are valid it loads TensorFlow (quietly), unless the command needs none:
    a mistyped option fails at once, not after the seconds TensorFlow takes."""

    def __init__(self, tensorflow, **kwargs):
        super().__init__(allow_abbrev=False, **kwargs)  # `--output` must not be read as `--output-format`
        self.tensorflow = tensorflow
        self.add_argument("--version", action="version", version=f"pertnet {VERSION}")

    def error(self, message):
        command = self.prog if self.prog.startswith("python -m ") else f"python -m {Path(self.prog).stem}"
        raise UserError(f"{message}; see `{command} --help`")

    def parse_args(self, args=None, namespace=None):
        parsed = super().parse_args(args, namespace)
        if self.tensorflow:
            import_tensorflow_quietly()
        return parsed


def parser(description, config, training=False, stage_required=True, tensorflow=True, reads_training=False,
           writes_predictions=False, entries=True, overrides=False, on_a_cluster=False):
    """The options every entry module takes, with their defaults from `config` (the repository's config.py:
    paths, seed and the stage table); `entries` adds --stages; `training` --reps, --epochs and --force
    (`overrides` the first two alone); `training` or `on_a_cluster` --workers and --cluster;
    `reads_training` --train-file, --layer and the label options (pertnet/labels.py); `writes_predictions`
    --output-format, --interval and the label columns;
    tensorflow=False for a command that never loads it (prepare_data, predict)."""
    p = Parser(tensorflow, description=description)
    p.set_defaults(config=config)
    p.add_argument("--stage", required=stage_required, choices=tuple(config.STAGES), help="which stage to run")
    p.add_argument("--data-dir", type=Path, default=None,
                   help=f"input files and prepared arrays (default {config.DATA_DIR}/, or {config.DEMO_DIR}/ with --demo)")
    p.add_argument("--models-dir", type=Path, default=config.MODELS_DIR, help="trained bundles (default %(default)s/)")
    p.add_argument("--submissions-dir", type=Path, default=config.SUBMISSIONS_DIR,
                   help="submissions (default %(default)s/)")
    p.add_argument("--seed", type=int, default=config.SEED, help="base seed of the shuffle and every rep (default %(default)s)")
    p.add_argument("--demo", action="store_true",
                   help="use the synthetic demo dataset (generated on first use) instead of the competition files")
    if entries:
        p.add_argument("--stages", type=Path, default=None, metavar="FILE",
                       help="take the stages' entries from this file (what python -m tune writes) instead of config.py")
    if reads_training:
        p.add_argument("--train-file", type=Path, default=None,
                       help="the training data: a de_train.parquet or the benchmark's de_train.h5ad "
                            "(default: de_train.parquet in the data folder, else de_train.h5ad there)")
        p.add_argument("--layer", default=None,
                       help="with an .h5ad training file: the layer holding the targets "
                            "(default sign_log10_pval; the benchmark scores clipped_sign_log10_pval)")
    if reads_training or writes_predictions:
        p.add_argument("--cell-type-column", metavar="NAME",
                       help="the column (an h5ad's obs key) naming each row's cell type (default cell_type; "
                            "predict: as the models recorded)")
        p.add_argument("--perturbation-columns", type=column_list, metavar="A,B",
                       help="the columns naming each row's perturbation, e.g. sm_name,dose: each combination is one "
                            "label (default sm_name; predict: as the models recorded)")
    if reads_training:
        p.add_argument("--ignore-columns", type=column_list, metavar="A,B",
                       help="columns of the training data that are neither labels nor genes: dropped")
        p.add_argument("--replicates", choices=REPLICATES,
                       help="mean: average the rows that repeat a label combination (default: refuse them)")
    if writes_predictions:
        p.add_argument("--output-format", choices=tuple(outputs.FORMATS), default=outputs.SUBMISSION,
                       help="csv: submissions/<stage>_submission.csv (default); h5ad: the benchmark's "
                            "submissions/<stage>_prediction.h5ad")
        p.add_argument("--interval", type=coverage_level, metavar="LEVEL",
                       help="also write bounds that cover the truth at this level (e.g. 0.9), and each pair's "
                            "uncertainty score; needs the stage's calibration (python -m evaluate --stage S --cv)")
    if training or overrides:
        p.add_argument("--reps", type=positive_int, help="override every entry's reps (departs from the original)")
        p.add_argument("--epochs", type=positive_int, help="override every entry's epochs (departs from the original)")
    if training:
        p.add_argument("--force", action="store_true", help="retrain every model, even those already saved")
    if training or on_a_cluster:
        where = p.add_mutually_exclusive_group()
        where.add_argument("--workers", type=positive_int, metavar="N",
                           help="train on a local Dask cluster of N worker processes (docs/cluster.md)")
        where.add_argument("--cluster", metavar="ADDRESS",
                           help="train on a running Dask scheduler, e.g. tcp://host:8786 (docs/cluster.md)")
    return p


def options(args):
    """The parsed command line as one `Options` object."""
    return Options(stage=args.stage, data_dir=data_dir(args), demo=args.demo, models_dir=args.models_dir,
                   submissions_dir=args.submissions_dir, seed=args.seed, reps=getattr(args, "reps", None),
                   epochs=getattr(args, "epochs", None), force=getattr(args, "force", False),
                   train_file=getattr(args, "train_file", None), layer=getattr(args, "layer", None),
                   output_format=getattr(args, "output_format", outputs.SUBMISSION),
                   interval=getattr(args, "interval", None), stages_file=_stages_file(args), stages=args.config.STAGES,
                   labels=labels(args), workers=getattr(args, "workers", None), cluster=getattr(args, "cluster", None))


def labels(args):
    """The label columns the options ask for (pertnet/labels.py), None where none is given."""
    given = {name: getattr(args, name, None) for name in ("cell_type_column", "perturbation_columns",
                                                          "ignore_columns", "replicates")}
    if all(value is None for value in given.values()):
        return None
    default = Labels()
    return Labels(given["cell_type_column"] or default.cell_type, given["perturbation_columns"] or default.perturbation,
                  given["ignore_columns"] or (), given["replicates"])


def _stages_file(args):
    """--stages, checked before any work (a bad file is a one-line error, nothing written)."""
    path = getattr(args, "stages", None)
    if path is not None:
        read_stages(path)
    return path


def data_dir(args):
    """The data folder the run reads: --data-dir, else config.py's (its demo folder with --demo)."""
    return args.data_dir or (args.config.DEMO_DIR if args.demo else args.config.DATA_DIR)


def run(main, argv=None):
    """Run an entry module's main; a UserError becomes one line on stderr and exit code 2, a stop
    signal one line saying what was kept and exit code 128 + its number (130 SIGINT, 143 SIGTERM,
    129 SIGHUP). The signal is acted on at the work's safe points (pertnet/stopping.py), and once
    more here: a request that arrived after the last of them still ends the run as a stop."""
    with stopping.handled():
        try:
            main(argv)
            stopping.check()
            return 0
        except UserError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        except KeyboardInterrupt as stop:  # Interrupted, or a KeyboardInterrupt raised by other code
            signum, kept = getattr(stop, "signum", signal.SIGINT), getattr(stop, "kept", "")
            with contextlib.suppress(OSError):  # SIGHUP: the terminal may be gone
                print(f"interrupted: {kept or 'no file was left half-written; rerun the same command'}",
                      file=sys.stderr)
            return 128 + signum
