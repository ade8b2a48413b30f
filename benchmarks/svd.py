"""The SVD basis of large targets: the exact one against the seeded randomized one (pertnet/targets.py), in one
run, on synthetic targets of the competition's 18,211 genes and ROWS rows (a screen of 40 cell types x
ROWS/40 compounds): wall time of each and the randomized basis's error against the exact one.

    python benchmarks/svd.py [--rows 5000] [--genes 18211] [--k 256] [--out svd.json]
"""
import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from pertnet import data, memory, synthetic, targets  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--genes", type=int, default=18211)
    parser.add_argument("--k", type=int, default=256, help="components (the largest n_dim of the stages is 246)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    cell_types = [f"line {i:02d}" for i in range(40)]
    compounds = [f"drug {i:04d}" for i in range(-(-args.rows // 40))]
    with tempfile.TemporaryDirectory(prefix="pertnet-svd-") as folder:
        design = synthetic.screen_design(cell_types, compounds, test_cell_types=1, test_compounds=1)
        synthetic.generate(folder, n_genes=args.genes, design=design)
        train = data.read_de_train(Path(folder) / "de_train.parquet")
    genes = [c for c in train.columns if c not in ("cell_type", "sm_name")]
    y = train[genes].to_numpy(np.float32)
    del train
    print(f"targets: {y.shape[0]} rows x {y.shape[1]} genes, k {args.k}", flush=True)
    timings, bases = {}, {}
    for name, fit in (("randomized", lambda: targets.randomized_right_singular_vectors(y, args.k)),
                      ("exact", lambda: targets.top_right_singular_vectors(np.asarray(y, np.float64), args.k))):
        started = time.perf_counter()
        bases[name] = fit()
        timings[name] = time.perf_counter() - started
        print(f"  {name:<11} {timings[name]:7.1f} s, peak memory so far {memory.peak_bytes() / memory.GB:.2f} GB",
              flush=True)
    exact, randomized = bases["exact"], bases["randomized"]
    cosines = np.abs(np.sum(exact * randomized, axis=1) / np.linalg.norm(randomized, axis=1))
    # what the models see: the targets through each basis, decoded again
    errors = {name: float(np.sqrt(np.mean((y - (y @ basis.T.astype(np.float32)) @ basis.astype(np.float32)) ** 2)))
              for name, basis in bases.items()}
    result = dict(rows=int(y.shape[0]), genes=int(y.shape[1]), k=args.k, seconds=timings,
                  speedup=timings["exact"] / timings["randomized"], reconstruction_rmse=errors,
                  component_cosine=dict(min=float(cosines.min()), median=float(np.median(cosines)),
                                        first_below_0_99=int(np.argmax(cosines < 0.99)) if (cosines < 0.99).any()
                                        else None))
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
