"""python -m predict --stage S: ensemble the stage's bundles and write its submission."""
import sys

from pertnet import cli, pipeline


def main(argv=None):
    args = cli.parser(__doc__, tensorflow=False, writes_predictions=True).parse_args(argv)
    pipeline.predict(args.stage, cli.data_dir(args), args.models_dir, args.submissions_dir, args.output_format)


if __name__ == "__main__":
    sys.exit(cli.run(main))
