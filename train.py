"""python -m train --stage S: train every entry x rep of the stage and save the bundles."""
import sys

from pertnet import cli, pipeline


def main(argv=None):
    args = cli.parser(__doc__, training=True).parse_args(argv)
    pipeline.train(args.stage, cli.data_dir(args), args.models_dir, args.seed, args.reps, args.epochs, args.force)


if __name__ == "__main__":
    sys.exit(cli.run(main))
