"""python -m evaluate: score a submission against a truth file (--submission F --truth F), with the
coverage of its bounds where predict --interval wrote them; or cross-validate a stage on its training
data (--stage S --cv), which also calibrates its intervals; beside four baselines."""
import sys
from pathlib import Path

import config
from pertnet import cli, crossval, evaluation, outputs, pipeline


def main(argv=None):
    p = cli.parser(__doc__, config, stage_required=False, reads_training=True, tensorflow=False,  # only --cv trains
                   overrides=True, on_a_cluster=True)  # --reps / --epochs, --workers / --cluster: for --cv
    p.add_argument("--cv", action="store_true", help="cross-validate --stage on the training data (folds from its design x 2 repeats)")
    p.add_argument("--submission", type=Path,
                   help="the submission to score (default: the --stage's submission in --submissions-dir)")
    p.add_argument("--truth", type=Path, help="the true values: parquet, CSV or h5ad (--layer) (default: "
                   f"{' or '.join(evaluation.TRUTH_FILES)} in the data folder)")
    p.add_argument("--tuning-dir", type=Path, default=config.TUNING_DIR,
                   help="with --cv: reuse the out-of-fold predictions `python -m tune` cached here where they match "
                        "(default %(default)s/)")
    p.add_argument("--json", type=Path, help="also write the report as JSON to this file")
    p.add_argument("--plot", type=Path, help="also draw the per-row errors into this PNG file (needs matplotlib)")
    args = p.parse_args(argv)
    if args.cv and (args.submission or args.truth):
        p.error("--cv scores the stage on held-out training rows; it takes no --submission or --truth")
    if args.cv and not args.stage:
        p.error("--cv needs --stage")
    if not args.cv and (args.reps or args.epochs or args.workers or args.cluster):
        p.error("--reps, --epochs, --workers and --cluster apply to --cv only")
    if not args.cv and not (args.submission or args.stage):
        p.error("give --submission F (or --stage S for its submission), or --stage S --cv")
    options = cli.options(args)
    pipeline.generate_demo(options)
    data_dir = options.data_dir
    if args.cv:
        cli.import_tensorflow_quietly()
        result = crossval.cross_validate(options, args.tuning_dir)
    else:
        submission = args.submission or outputs.path(args.submissions_dir, args.stage)
        truth = args.truth or evaluation.truth_file(data_dir) or Path(data_dir) / evaluation.TRUTH_FILES[0]
        result = evaluation.score_submission(submission, truth, data_dir, args.stage or submission.stem,
                                             args.train_file, args.layer, labels=evaluation.label_columns(options))
    evaluation.show(result, args.json, args.plot)


if __name__ == "__main__":
    sys.exit(cli.run(main))
