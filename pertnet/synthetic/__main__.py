"""python -m pertnet.synthetic --out DIR: write a synthetic dataset (the library: pertnet/synthetic/__init__.py),
or --stats DIR: print the statistics of one."""
import argparse

from pertnet import cli, synthetic


def _labels(text: str, kind: str) -> list[str]:
    """--cell-types / --compounds: a count of made-up names, or the names themselves, comma-separated."""
    if text.strip().isdigit():
        count = int(text)
        return [f"{kind} {i:0{len(str(count))}d}" for i in range(1, count + 1)]
    names = [name.strip() for name in text.split(",")]
    if "" in names or len(set(names)) < len(names):
        raise argparse.ArgumentTypeError(f"give a count or distinct comma-separated names, got {text!r}")
    return names


def _screen(args, parser) -> tuple:
    """The design --cell-types, --compounds and what they hold out ask for, checked."""
    cell_types = args.cell_types or _labels("4", "cell type")
    compounds = args.compounds or _labels("30", "compound")
    test_compounds = len(compounds) // 3 if args.test_compounds is None else args.test_compounds
    if args.scattered:
        if args.scattered > len(cell_types) * len(compounds) - max(len(cell_types), len(compounds)):
            parser.error(f"--scattered {args.scattered} leaves some cell type or compound without a training row")
    elif not (0 < args.test_cell_types < len(cell_types) and 0 < test_compounds < len(compounds)):
        parser.error(f"--test-cell-types must be 1..{len(cell_types) - 1} and --test-compounds "
                     f"1..{len(compounds) - 1}: the pairs to predict need their labels in training rows")
    doses = synthetic.dose_ladder(args.doses) if args.doses else None
    return synthetic.screen_design(cell_types, compounds, args.test_cell_types, test_compounds, args.scattered, args.seed,
                                   doses)


def main(argv=None) -> int:
    parser = cli.Parser(False, prog="python -m pertnet.synthetic", description=synthetic.__doc__.split("\n")[0])
    parser.add_argument("--out", help="folder to write the synthetic dataset into")
    parser.add_argument("--genes", type=cli.positive_int, default=18211)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--h5ad", action="store_true", help="also write de_train.h5ad and de_test.h5ad")
    parser.add_argument("--stats", metavar="DIR", help="print statistics of a generated dataset")
    screen = parser.add_argument_group("another design (default: the competition's cell types, compounds and pairs)")
    screen.add_argument("--cell-types", type=lambda text: _labels(text, "cell type"), metavar="N|NAMES",
                        help="a screen of these cell types: a count (made-up names) or comma-separated names (default 4)")
    screen.add_argument("--compounds", type=lambda text: _labels(text, "compound"), metavar="N|NAMES",
                        help="its compounds, likewise (default 30)")
    screen.add_argument("--test-cell-types", type=cli.positive_int, default=2, metavar="K",
                        help="pairs to predict: the last K cell types' rows (default 2) ...")
    screen.add_argument("--test-compounds", type=cli.positive_int, metavar="M",
                        help="... of the last M compounds (default a third of them), as in the competition")
    screen.add_argument("--scattered", type=cli.positive_int, metavar="P",
                        help="instead, P pairs to predict drawn at random over all cell types")
    screen.add_argument("--doses", type=cli.positive_int, metavar="D",
                        help="measure every pair at D doses a decade apart (0.01 ... 10, a `dose` column), with a "
                             "dose-response signal; train with --perturbation-columns sm_name,dose")
    args = parser.parse_args(argv)
    if not args.out and not args.stats:
        parser.error("give --out DIR and/or --stats DIR")
    design_options = (args.cell_types, args.compounds, args.test_compounds, args.scattered, args.doses)
    is_screen = any(option is not None for option in design_options) or args.test_cell_types != 2
    if args.out:
        synthetic.generate(args.out, n_genes=args.genes, seed=args.seed, as_h5ad=args.h5ad,
                           design=_screen(args, parser) if is_screen else None, log=print)
    if args.stats:
        for name, value in synthetic.stats(args.stats).items():
            print(f"{name:45s} {value:.4f}" if isinstance(value, float) else f"{name:45s} {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
