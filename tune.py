"""python -m tune --stage S --entry ID --trials N: search an entry's hyperparameters (or, with --weights,
the stage's ensemble weights) with optuna, minimising the author's cross-validated MRRMSE."""
import sys
from pathlib import Path

import config
from pertnet import cli, pipeline, tuning


def main(argv=None):
    p = cli.parser(__doc__, config, overrides=True, reads_training=True, on_a_cluster=True)
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--entry", help="the entry whose hyperparameters to search (an id of the stage)")
    target.add_argument("--weights", action="store_true", help="search the stage's ensemble weights instead")
    p.add_argument("--trials", type=cli.positive_int, required=True, help="trials to add to the study")
    p.add_argument("--study", help="the study's name (default: <stage>-entry-<id>-<data>, or <stage>-weights-<data>-<entries>, "
                                   "<data> and <entries> 8 hex digits of their digests: another dataset, another study)")
    p.add_argument("--storage", help="a database URL optuna takes, e.g. postgresql://user@host:5432/db "
                                     "(default: an SQLite file, <tuning-dir>/optuna.db)")
    p.add_argument("--tuning-dir", type=Path, default=config.TUNING_DIR,
                   help="studies, results and cached predictions (default %(default)s/)")
    p.add_argument("--out", type=Path, help="the stages file to write the best result into "
                                            "(default <tuning-dir>/<study>.json)")
    p.add_argument("--plot", type=Path, help="also draw the optimisation history into this PNG file")
    args = p.parse_args(argv)
    options = cli.options(args)
    pipeline.generate_demo(options)
    search = tuning.Search(args.trials, args.study, args.storage, args.tuning_dir, args.out, args.plot)
    if args.entry is not None:
        tuning.tune_entry(options, args.entry, search)
    else:
        tuning.tune_weights(options, search)


if __name__ == "__main__":
    sys.exit(cli.run(main))
