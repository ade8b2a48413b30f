"""python -m repro --stage S: prepare, train and predict the stage (stage_2 runs stage_1 first)."""
import sys

import config
from pertnet import cli, pipeline


def main(argv=None):
    args = cli.parser(__doc__, config, training=True, reads_training=True, writes_predictions=True).parse_args(argv)
    options = cli.options(args)
    pipeline.generate_demo(options)
    pipeline.repro(options)


if __name__ == "__main__":
    sys.exit(cli.run(main))
