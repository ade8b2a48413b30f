"""python -m prepare_data --stage S: validate the inputs and write the stage's encoded arrays."""
import sys

import config
from pertnet import cli, pipeline


def main(argv=None):
    args = cli.parser(__doc__, config, tensorflow=False, reads_training=True, entries=False).parse_args(argv)
    options = cli.options(args)
    pipeline.generate_demo(options)
    pipeline.prepare(options)


if __name__ == "__main__":
    sys.exit(cli.run(main))
