"""How close training, prediction and tuning come to the machine's limit, in one run.

    python benchmarks/bench.py --stage stage_1 [--reps N] [--epochs N] [--entries 1,3]
                               [--reference-entry ID] [--reference-reps N] [--tune-entry ID]
                               [--data-dir data/demo]
    python benchmarks/bench.py --evaluate-only submissions/simple_submission.csv [--data-dir data/demo]

1. The limit: the best sustained float32 matrix-multiply rate of this machine (NumPy and
   TensorFlow, square matrices of a few sizes).
2. prepare_data, train and predict of the stage, each in its own process on a scratch copy of
   the data (default: the 18,211-gene demo), with wall time and peak RSS per command. Training
   FLOPs are 6 x dense weights x rows x epochs x reps summed over the entries; efficiency is
   FLOPs / train wall time / matmul rate. stage_2 needs stage_1's submission (pseudolabels):
   it is made first by a stage_1 run of one epoch, not timed (the values do not change the work).
   Where the data has a hidden truth (the demo does), the submission's MRRMSE against it shows
   that the speed cost no quality.
3. The plain reference loop, as the original ran it: per rep, a randomized TruncatedSVD refitted
   on the targets, one Keras `fit`, and at predict time the SVD refitted again and `predict` with
   batch size 1; on one entry and a few reps at the entry's full epochs. The speed-up is its
   seconds per rep over ours (train log) for the same entry.
4. One `python -m tune` trial of an entry (--tune-entry, default the reference entry; 0 skips it):
   its 8 cross-validation folds' training FLOPs over the trial's wall time (its own log line,
   start-up excluded), and its wall time against 8 x the entry's time in `train`.
5. `python -m evaluate` on the submission against the demo's truth (de_test.parquet), beside a
   fresh process that only reads the three files it needs with pandas; alone with
   `--evaluate-only SUBMISSION` (no training: well under a minute).
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import config  # noqa: E402
from pertnet import defaults, evaluation, memory  # noqa: E402


def matmul_rate(seconds=1.0):
    """Best sustained float32 GEMM rate (GFLOP/s) over NumPy and TensorFlow, a few square sizes."""
    import tensorflow as tf

    best = {}
    for n in (1024, 2048, 3072):
        a, b = (np.random.default_rng(n).random((n, n), dtype=np.float32) for _ in range(2))
        ta, tb = tf.constant(a), tf.constant(b)
        for name, multiply in (("numpy", lambda: a @ b), ("tensorflow", lambda: tf.matmul(ta, tb).numpy())):
            multiply()  # warm-up
            calls, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds:
                multiply()
                calls += 1
            rate = 2 * n ** 3 * calls / (time.perf_counter() - start) / 1e9
            best[name] = max(best.get(name, 0.0), rate)
    return best


def shape_rate(entries, rows, seconds=0.3):
    """The float32 matmul rate at the training's own shapes: every Dense layer's forward (R, bs, in) x
    (R, in, out) and its two backward products, FLOP-weighted over the stage. Small per-rep batches
    multiply below the large-matrix rate; this is the ceiling for this stage's work."""
    import tensorflow as tf

    from pertnet import architectures

    total_flops = total_seconds = 0.0
    for entry in entries:
        widths = architectures.dense_widths(entry)
        reps, batch = entry.reps, entry.bs
        for fan_in, units in zip(widths, widths[1:]):
            rng = np.random.default_rng(0)
            x, w, dy = (tf.constant(rng.random(shape, dtype=np.float32)) for shape in
                        [(reps, batch, fan_in), (reps, fan_in, units), (reps, batch, units)])
            products = [tf.function(product, autograph=False) for product in (
                lambda: tf.matmul(x, w), lambda: tf.matmul(dy, w, transpose_b=True),
                lambda: tf.matmul(x, dy, transpose_a=True))]
            per_call = []
            for product in products:
                product().numpy()
                calls, start = 0, time.perf_counter()
                while time.perf_counter() - start < seconds:
                    result = product()
                    calls += 1
                result.numpy()
                per_call.append((time.perf_counter() - start) / calls)
            steps = entry.epochs * -(-rows // batch)
            total_flops += 6 * reps * batch * fan_in * units * steps
            total_seconds += sum(per_call) * steps
    return total_flops / total_seconds / 1e9


def reporting_peak(args):
    """`python -m module ...` or `python -c code ...` made to print its own peak RSS at exit: wait4's
    ru_maxrss of a child counts this (large) process's peak too, as Linux carries it across exec."""
    report = ("import atexit; from pertnet import memory; "
              "atexit.register(lambda: print('PEAK_RSS_KB', memory.peak_bytes() // 1024, flush=True))")
    if args[0] == "-m":
        return ["-c", f"{report}; import runpy; runpy.run_module({args[1]!r}, run_name='__main__', alter_sys=True)",
                *args[2:]]
    return ["-c", f"{report}; {args[1]}", *args[2:]] if args[0] == "-c" else args


def run_command(label, args, log_path):
    """Run `python args` from the repository root; (wall seconds, peak RSS in MB, output)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    with open(log_path, "w") as log:
        process = subprocess.Popen([sys.executable, *map(str, reporting_peak(args))], cwd=ROOT, env=env, stdout=log,
                                   stderr=subprocess.STDOUT)
        _, status, _ = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    output = Path(log_path).read_text()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{label} failed (exit {os.waitstatus_to_exitcode(status)}):\n{output[-3000:]}")
    peak = re.search(r"^PEAK_RSS_KB (\d+)$", output, re.MULTILINE)  # see child() and reporting_peak()
    return wall, int(peak[1]) / 1024, output


def print_peak_rss():
    """This process's own peak RSS, for the parent to read from the output (see memory.peak_bytes)."""
    peak = memory.peak_bytes()
    if peak is not None:
        print(f"PEAK_RSS_KB {peak // 1024}")


def evaluate_against_plain_read(submission, data_dir, scratch, repeats=3):
    """`python -m evaluate` on a submission against data_dir's de_test.parquet (baselines from its
    de_train.parquet), and a process that only reads those three files with pandas (start-up and
    `import pandas` included): the goal is at most 1.5 times the plain read. Alternated `repeats`
    times, as other work on the machine slows runs unevenly; the best wall time of each counts."""
    truth, train = data_dir / "de_test.parquet", data_dir / "de_train.parquet"
    commands = dict(evaluate=["-m", "evaluate", "--submission", submission, "--truth", truth, "--data-dir", data_dir],
                    plain_read=["-c", f"import pandas as pd; pd.read_csv({str(submission)!r}); "
                                      f"pd.read_parquet({str(truth)!r}); pd.read_parquet({str(train)!r})"])
    runs = {name: [] for name in commands}
    for _ in range(repeats):
        for name, args in commands.items():
            runs[name].append(run_command(name, args, scratch / f"{name}.log")[:2])
    result = {name: dict(wall_s=round(min(w for w, _ in times), 2), peak_rss_mb=round(max(r for _, r in times)))
              for name, times in runs.items()}
    result["ratio"] = round(result["evaluate"]["wall_s"] / result["plain_read"]["wall_s"], 2)
    return result


def child(argv):
    """One pipeline command in this process, on a subset of the stage's entries (--entries)."""
    p = argparse.ArgumentParser()
    p.add_argument("command", choices=["prepare", "train", "predict", "reference"])
    p.add_argument("--stage", required=True)
    p.add_argument("--entries")
    p.add_argument("--data-dir", type=Path)
    p.add_argument("--models-dir", type=Path)
    p.add_argument("--submissions-dir", type=Path)
    p.add_argument("--reps", type=int)
    p.add_argument("--epochs", type=int)
    args = p.parse_args(argv)
    from pertnet import pipeline
    from pertnet.options import Options

    options = Options(args.stage, args.data_dir, args.models_dir, args.submissions_dir, reps=args.reps,
                      epochs=args.epochs, stages_file=selected_stages(args.stage, args.entries, args.data_dir.parent))
    if args.command == "prepare":
        pipeline.prepare(options)
    elif args.command == "train":
        pipeline.train(options)
    elif args.command == "predict":
        pipeline.predict(options)
    else:
        entry = options.entries()[0]
        reference_loop(entry.with_overrides(epochs=args.epochs), args.reps, pipeline.load_prepared(args.data_dir, args.stage))
    print_peak_rss()


def selected_stages(stage, entry_ids, folder):
    """A stages file holding the stage's entries `entry_ids` (comma-separated; None: all), for --stages."""
    from pertnet.entries import stage_entries, write_stages

    path = Path(folder) / "selected_stages.json"
    write_stages(path, {stage: stage_entries(stage, ids=entry_ids.split(",") if entry_ids else None)})
    return path


def reference_loop(entry, reps, prepared):
    """The original's way, rep after rep: SVD fit, Keras fit, SVD refit, predict with batch size 1."""
    import keras
    from sklearn.decomposition import TruncatedSVD

    from pertnet import nets

    targets, inputs = prepared["train_targets"], prepared["train_inputs"]
    times = {"train": 0.0, "predict": 0.0}
    for rep in range(reps):
        started = time.perf_counter()
        svd = TruncatedSVD(entry.n_dim).fit(targets)
        model = nets.build_model(entry, len(prepared["vocabulary"]))
        model.fit(inputs, svd.transform(targets), epochs=entry.epochs, batch_size=entry.bs, verbose=0)
        middle = time.perf_counter()
        svd = TruncatedSVD(entry.n_dim).fit(targets)
        svd.inverse_transform(model.predict(prepared["test_inputs"], batch_size=1, verbose=0))
        times["train"] += middle - started
        times["predict"] += time.perf_counter() - middle
        keras.backend.clear_session()
    print("REFERENCE " + json.dumps({k: v / reps for k, v in times.items()}))


def training_flops(stage, entry_ids, rows, reps, epochs):
    from pertnet import training
    from pertnet.entries import stage_entries

    entries = stage_entries(stage, reps, epochs, ids=entry_ids)
    return sum(training.training_flops(e, rows) for e in entries), entries


def tuning_trial(stage, entry, data, scratch, overrides):
    """One `tune` trial of `entry`: its wall time (from the trial's own line, start-up excluded) and
    the training FLOPs of its 8 folds."""
    from pertnet import crossval, training
    from pertnet.options import Options

    me = ["-m", "tune", "--stage", stage, "--entry", entry.id, "--trials", "1", "--data-dir", data,
          "--tuning-dir", scratch / "tuning", *overrides]
    wall, rss, output = run_command("tune", me, scratch / "tune.log")
    trial_s = float(re.search(r"trial 0 \(1/1 here\): .* in ([\d.]+)s;", output).group(1))
    with crossval.CrossValidation.from_files(Options(stage, data)) as cv:
        rows = [int((~fold.held_out).sum()) + len(cv.pseudolabels) for fold in cv.folds]
    return dict(trial_s=trial_s, command_wall_s=round(wall, 1), peak_rss_mb=round(rss),
                train_tflop=sum(training.training_flops(entry, r) for r in rows) / 1e12)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stage", choices=defaults.STAGE_NAMES)
    p.add_argument("--evaluate-only", type=Path, metavar="SUBMISSION",
                   help="only time `python -m evaluate` on this submission against the plain read (part 4)")
    p.add_argument("--reps", type=int, help="override every entry's reps (default: as configured)")
    p.add_argument("--epochs", type=int, help="override every entry's epochs (default: as configured)")
    p.add_argument("--entries", help="comma-separated entry ids to run (default: all)")
    p.add_argument("--reference-entry", help="entry of the plain reference loop (default: the first one run)")
    p.add_argument("--reference-reps", type=int, default=2, help="reps of the reference loop (default 2; 0 skips it)")
    p.add_argument("--tune-entry", help="entry of the tuning trial (default: the reference entry; 0 skips it)")
    p.add_argument("--data-dir", type=Path, default=ROOT / config.DEMO_DIR)
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args()
    if not (args.stage or args.evaluate_only):
        p.error("give --stage, or --evaluate-only SUBMISSION")
    if not (args.data_dir / "de_train.parquet").is_file():
        sys.exit(f"{args.data_dir}/de_train.parquet missing; run `python -m repro --stage simple --demo` "
                 "once to generate the demo data, or pass --data-dir")
    if args.evaluate_only:
        with tempfile.TemporaryDirectory(prefix="pertnet-bench-") as scratch:
            evaluated = evaluate_against_plain_read(args.evaluate_only.resolve(), args.data_dir.resolve(), Path(scratch))
        report_evaluate(evaluated)
        if args.json:
            args.json.write_text(json.dumps(dict(evaluate=evaluated), indent=1))
        return

    print(f"[bench] {args.stage}: measuring the float32 matmul rate ...", flush=True)
    rates = matmul_rate()
    rate = max(rates.values())
    print("[bench] matmul rate: " + ", ".join(f"{k} {v:.0f}" for k, v in rates.items()) + " GFLOP/s", flush=True)

    scratch = Path(tempfile.mkdtemp(prefix="pertnet-bench-"))
    try:
        data = scratch / "data"
        shutil.copytree(args.data_dir, data, ignore=shutil.ignore_patterns("prepared"))
        folders = ["--data-dir", data, "--models-dir", scratch / "models", "--submissions-dir", scratch / "submissions"]
        me = [Path(__file__).resolve(), "--child"]
        entries = ["--entries", args.entries] if args.entries else []
        overrides = [*(["--reps", args.reps] if args.reps else []), *(["--epochs", args.epochs] if args.epochs else [])]
        if args.stage in defaults.PSEUDOLABEL_SOURCE:
            source = defaults.PSEUDOLABEL_SOURCE[args.stage]
            print(f"[bench] making {source}'s submission (pseudolabels) with one epoch, not timed ...", flush=True)
            for command in ("prepare", "train", "predict"):
                run_command(command, [*me, command, "--stage", source, *folders, "--reps", 1, "--epochs", 1],
                            scratch / f"pseudo_{command}.log")

        results = {}
        for command in ("prepare", "train", "predict"):
            print(f"[bench] {command} ...", flush=True)
            extra = [*entries, *overrides] if command == "train" else entries
            wall, rss, output = run_command(command, [*me, command, "--stage", args.stage, *folders, *extra],
                                            scratch / f"{command}.log")
            results[command] = dict(wall_s=round(wall, 2), peak_rss_mb=round(rss))
            if command == "train":
                per_entry = {m[0]: (int(m[1]), float(m[2])) for m in
                             re.findall(r"entry (\S+) \(\d+/\d+\): saved (\d+) reps in ([\d.]+)s", output)}
                results["train_peak_gb_by_entry"] = [float(gb) for gb in re.findall(r"peak memory ([\d.]+) GB", output)]
            print(f"[bench]   {command}: {wall:.1f}s wall, peak RSS {rss:.0f} MB", flush=True)

        truth = evaluation.truth_file(data)  # the demo's hidden truth: quality, from the same run
        if truth is not None:
            scored, _ = evaluation.score_submission(scratch / "submissions" / f"{args.stage}_submission.csv", truth,
                                                    data, args.stage, log=lambda *_: None)
            results["truth_mrrmse"] = scored["scores"]["model"]["overall"]["mrrmse"]
            if truth.suffix == ".parquet":
                print("[bench] evaluate against a plain read of its files ...", flush=True)
                results["evaluate"] = evaluate_against_plain_read(
                    scratch / "submissions" / f"{args.stage}_submission.csv", data, scratch)
        rows = int(np.load(data / "prepared" / f"{args.stage}.npz")["train_inputs"].shape[0])
        ids = args.entries.split(",") if args.entries else None
        flops, run_entries = training_flops(args.stage, ids, rows, args.reps, args.epochs)
        achieved = flops / results["train"]["wall_s"] / 1e9
        print("[bench] matmul rate at the training's own shapes ...", flush=True)
        at_shapes = shape_rate(run_entries, rows)
        summary = dict(stage=args.stage, rows=rows, entries=[e.id for e in run_entries],
                       reps=sorted({e.reps for e in run_entries}), matmul_gflops=rates,
                       train_tflop=flops / 1e12, train_gflops=achieved, efficiency=achieved / rate,
                       matmul_gflops_at_training_shapes=at_shapes,
                       train_seconds_in_entries=sum(t for _, t in per_entry.values()), **results)

        if args.reference_reps:
            entry_id = args.reference_entry or run_entries[0].id
            print(f"[bench] plain reference loop: entry {entry_id}, {args.reference_reps} reps, "
                  f"{next(e.epochs for e in run_entries if e.id == entry_id)} epochs ...", flush=True)
            ref_overrides = ["--epochs", args.epochs] if args.epochs else []
            wall, rss, output = run_command("reference", [*me, "reference", "--stage", args.stage, "--entries", entry_id,
                                                          *folders, "--reps", args.reference_reps, *ref_overrides],
                                            scratch / "reference.log")
            reference = json.loads(output.split("REFERENCE ", 1)[1].splitlines()[0])
            reps, seconds = per_entry[entry_id]
            models = sum(e.reps for e in run_entries)
            summary["reference"] = dict(entry=entry_id, reps=args.reference_reps, peak_rss_mb=round(rss),
                                        train_s_per_rep=reference["train"], ours_train_s_per_rep=seconds / reps,
                                        train_speedup=reference["train"] / (seconds / reps),
                                        predict_s_per_model=reference["predict"],
                                        ours_predict_s_per_model=results["predict"]["wall_s"] / models,
                                        predict_speedup=reference["predict"] / (results["predict"]["wall_s"] / models))
        tune_entry = args.tune_entry or args.reference_entry or run_entries[0].id
        if tune_entry != "0" and args.stage not in defaults.PSEUDOLABEL_SOURCE:
            print(f"[bench] one tuning trial of entry {tune_entry} ...", flush=True)
            (entry,) = [e for e in run_entries if e.id == tune_entry]
            trial = tuning_trial(args.stage, entry, data, scratch, overrides)
            trial.update(gflops=trial["train_tflop"] * 1e3 / trial["trial_s"], entry=tune_entry,
                         over_8_train_entries=trial["trial_s"] / (8 * per_entry[tune_entry][1]))
            summary["tuning_trial"] = dict(trial, efficiency=trial["gflops"] / rate)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    report(summary)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1))


def report(s):
    print(f"\n== {s['stage']}: entries {','.join(s['entries'])}, reps {s['reps']}, {s['rows']} rows ==")
    print(f"matmul rate (limit)     {max(s['matmul_gflops'].values()):8.1f} GFLOP/s "
          f"({', '.join(f'{k} {v:.0f}' for k, v in s['matmul_gflops'].items())})")
    print(f"training work           {s['train_tflop']:8.3f} TFLOP")
    print(f"achieved                {s['train_gflops']:8.1f} GFLOP/s over the train command's wall time "
          f"({s['train_tflop'] * 1e3 / s['train_seconds_in_entries']:.1f} inside the entries' training)")
    print(f"efficiency              {s['efficiency']:8.2f}  (achieved / matmul rate)")
    print(f"matmul at train shapes  {s['matmul_gflops_at_training_shapes']:8.1f} GFLOP/s (the stage's own (reps, batch, in) x "
          f"(reps, in, out) products: {s['train_gflops'] / s['matmul_gflops_at_training_shapes']:.2f} of it achieved)")
    for command in ("prepare", "train", "predict"):
        print(f"{command:<10} wall {s[command]['wall_s']:8.1f} s   peak RSS {s[command]['peak_rss_mb']:6d} MB")
    peaks = s.get("train_peak_gb_by_entry")
    if peaks:
        print(f"train peak memory       {peaks[0]:.2f} GB after the first entry, {peaks[len(peaks) // 2]:.2f} after "
              f"entry {len(peaks) // 2 + 1}, {peaks[-1]:.2f} after the last ({len(peaks)} entries)")
    if "truth_mrrmse" in s:
        source = (" (its pseudolabels from a 1-epoch stage_1: not the real chain's score)"
                  if s["stage"] in defaults.PSEUDOLABEL_SOURCE else "")
        print(f"truth MRRMSE            {s['truth_mrrmse']:8.4f}{source}")
    if "tuning_trial" in s:
        report_tuning_trial(s["tuning_trial"])
    if "evaluate" in s:
        report_evaluate(s["evaluate"])
    if "reference" in s:
        r = s["reference"]
        print(f"plain reference loop (entry {r['entry']}, {r['reps']} reps, one Keras fit each): "
              f"{r['train_s_per_rep']:.1f} s per rep vs ours {r['ours_train_s_per_rep']:.2f} s -> "
              f"speed-up {r['train_speedup']:.1f}x; predict {r['predict_s_per_model']:.2f} s per model "
              f"(batch size 1, SVD refit) vs ours {r['ours_predict_s_per_model']:.3f} s -> {r['predict_speedup']:.1f}x")


def report_tuning_trial(t):
    print(f"tuning trial (entry {t['entry']}, 8 folds): {t['trial_s']:.1f} s = {t['over_8_train_entries']:.2f} x "
          f"(8 x the entry's time in train); {t['train_tflop']:.3f} TFLOP, {t['gflops']:.1f} GFLOP/s, efficiency "
          f"{t['efficiency']:.2f}; the command {t['command_wall_s']:.1f} s with start-up, peak RSS {t['peak_rss_mb']} MB")


def report_evaluate(e):
    evaluate, plain = e["evaluate"], e["plain_read"]
    print(f"{'evaluate':<10} wall {evaluate['wall_s']:8.1f} s   peak RSS {evaluate['peak_rss_mb']:6d} MB   "
          f"{e['ratio']:.2f}x the plain read of its three files ({plain['wall_s']:.1f} s, {plain['peak_rss_mb']} MB)")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2:])
    else:
        main()
