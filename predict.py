"""python -m predict --stage S: ensemble the stage's bundles and write its submission."""
import sys

import config
from pertnet import cli, pipeline


def main(argv=None):
    args = cli.parser(__doc__, config, tensorflow=False, writes_predictions=True).parse_args(argv)
    options = cli.options(args)
    pipeline.generate_demo(options)
    pipeline.predict(options)


if __name__ == "__main__":
    sys.exit(cli.run(main))
