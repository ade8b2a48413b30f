"""Stop signals under stress: does every SIGTERM stop `train`, wherever it lands?

    python benchmarks/stop_stress.py [--runs 30] [--data-dir data/demo] [--seed 0]

Each run starts `python -m train --stage stage_1 --reps 2 --epochs 10` with SIGINT ignored (as a
background job inherits it), waits for its first saved entry, then sends SIGTERM after a random
delay (up to the time that entry took, so the signal lands anywhere: inside an epoch, a save, a
finalizer, between entries). A run honours the signal when it exits with 143, the resume message
on stderr, no "Exception ignored" line and no *.tmp file; anything else is counted as lost.
The models go to a scratch folder; the data folder (default the demo, generated if absent) is read.
"""
import argparse
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ["--stage", "stage_1", "--reps", "2", "--epochs", "10"]


def one_run(data_dir, models_dir, delay_fraction):
    """(outcome, seconds from the first save to the signal): 'honoured' or what went wrong."""
    shutil.rmtree(models_dir, ignore_errors=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", "train", *TRAIN, "--data-dir", str(data_dir),
                                "--models-dir", str(models_dir)], cwd=ROOT, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    for line in process.stdout:
        saved = re.search(r": saved \d+ reps in ([\d.]+)s", line)
        if saved:
            delay = delay_fraction * float(saved.group(1))
            time.sleep(delay)
            process.send_signal(signal.SIGTERM)
            break
    else:
        err = process.communicate(timeout=600)[1].strip().splitlines()
        return f"no entry was saved (exit {process.returncode}: {err[-1] if err else 'no stderr'})", 0.0
    out, err = process.communicate(timeout=600)
    if process.returncode != 128 + signal.SIGTERM:
        return f"exit {process.returncode}", delay
    if "Exception ignored" in err or not re.search(r"rerun the same command to resume\n$", err):
        return "exit 143, but stderr: " + err.strip().splitlines()[-1], delay
    if list(Path(models_dir).rglob("*.tmp")):
        return "a *.tmp file was left", delay
    return "honoured", delay


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], allow_abbrev=False)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data" / "demo")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random delays")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if not (args.data_dir / "de_train.parquet").is_file():
        subprocess.run([sys.executable, "-m", "pertnet.synthetic", "--out", str(args.data_dir)], check=True, env=env)
    subprocess.run([sys.executable, "-m", "prepare_data", "--stage", "stage_1", "--data-dir", str(args.data_dir)],
                   check=True, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    rng = random.Random(args.seed)
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="pertnet-stop-stress-") as scratch:
        for number in range(1, args.runs + 1):
            outcome, delay = one_run(args.data_dir, Path(scratch) / "models", rng.random())
            outcomes.append(outcome)
            print(f"run {number}/{args.runs}: SIGTERM {delay:.2f}s after the first save: {outcome}", flush=True)
    honoured = outcomes.count("honoured")
    print(f"\n{honoured} of {len(outcomes)} SIGTERMs honoured; {len(outcomes) - honoured} lost")
    return 0 if honoured == len(outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
