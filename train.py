"""python -m train --stage S: train every entry x rep of the stage and save the bundles."""
import sys

import config
from pertnet import cli, pipeline


def main(argv=None):
    args = cli.parser(__doc__, config, training=True).parse_args(argv)
    options = cli.options(args)
    pipeline.generate_demo(options)
    pipeline.train(options)


if __name__ == "__main__":
    sys.exit(cli.run(main))
