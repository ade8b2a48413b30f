"""A stage in memory: encode training rows, fit every entry, predict pairs. No files, no commands.

What the estimator (pertnet/estimator.py) fits and predicts with; everything that trains reaches it
through the estimator. `bundle` saves a `Stage` as models/<stage>/ and loads it back.

    training frame --encode--> training set (what data/prepared/<stage>.npz holds)
    training set --Stage.start--> vocabulary, SVD codec, clip bounds --fit--> each entry's rep weights
    label codes --predict--> per-entry median over reps -> weighted mean over entries -> clip
"""
import gc
import hashlib
import json
import time
from concurrent import futures

import numpy as np
import pandas as pd

from pertnet import architectures, ensemble, memory, stopping, tablefile, version
from pertnet.pace import Pace
from pertnet.features import Vocabulary
from pertnet.targets import SVDCodec, cap_n_dim, n_dim_limit


PAIRS_AT_ONCE = 1024  # pairs predicted at a time: the ensemble of a block is 1,024 x 18,211 float64


def encode(train, genes, seed, pseudolabels=None, label_columns=""):
    """The training set of a training frame in memory (validated rows: pertnet/data.py) plus pseudolabel rows
    ((pairs, values) or None): `encode_blocks` with the targets in memory."""
    values = train[genes].to_numpy(np.float32)
    targets = tablefile.InMemory((len(values) + (0 if pseudolabels is None else len(pseudolabels[0])), len(genes)))
    return encode_blocks(train[["cell_type", "sm_name"]], genes, tablefile.gene_blocks(values), targets, seed,
                         pseudolabels, label_columns)


def encode_blocks(pairs, genes, blocks, targets, seed, pseudolabels=None, label_columns=""):
    """The training set of de_train's rows (`pairs`, the canonical pairs, and their values as gene `blocks`:
    (genes slice, (rows, genes in the block))), which alone set the clip bounds, plus pseudolabel rows
    ((pairs, values) or None): as the original, de_train shuffled once with `seed` and the pseudolabels
    appended after it in their own (id_map's) order; labels encoded with their vocabulary (the arrays
    prepare_data saves), and the label columns they came from recorded (label_columns:
    `pertnet.labels.Labels.as_json()`, "" the competition's). The target rows go to `targets` (a
    pertnet/tablefile.py writer, a file or memory) block by block; the training set holds the in-memory ones."""
    order = shuffled_order(pairs, seed)
    low, high = np.empty(len(genes), np.float32), np.empty(len(genes), np.float32)
    for columns, values in blocks:
        targets.write(slice(0, len(order)), columns, values[order])
        low[columns], high[columns] = values.min(axis=0), values.max(axis=0)
    if pseudolabels is not None and len(pseudolabels[0]):
        for columns, values in tablefile.gene_blocks(pseudolabels[1]):
            targets.write(slice(len(order), len(order) + len(pseudolabels[0])), columns, values)
    return dict(_labelled(pairs.iloc[order], pseudolabels, genes, label_columns), clip_low=low, clip_high=high,
                train_targets=getattr(targets, "array", None))


def encode_rows(pairs, genes, table, rows, seed, pseudolabels=None, label_columns=""):
    """`encode`'s training set of rows `rows` of a table (`pairs`: the table's; a pertnet/tablefile.py table
    or an array) plus pseudolabel rows ((pairs, values: a table or an array) or None), without a copy of
    either: its targets read the rows in their shuffled order, then the pseudolabels' (a `tablefile.Rows`).
    What a cross-validation fold trains on."""
    order = shuffled_order(pairs.iloc[rows], seed)
    extra = None if pseudolabels is None or not len(pseudolabels[0]) else pseudolabels
    low, high = np.empty(len(genes), np.float32), np.empty(len(genes), np.float32)
    for columns, values in tablefile.gene_blocks(tablefile.Rows(table, rows)):
        low[columns], high[columns] = values.min(axis=0), values.max(axis=0)
    return dict(_labelled(pairs.iloc[rows[order]], extra, genes, label_columns), clip_low=low, clip_high=high,
                train_targets=tablefile.Rows(table, rows[order], None if extra is None else extra[1]))


def shuffled_order(pairs, seed):
    """The original's shuffle of de_train (pandas' sample), drawn on the labels alone: positions of `pairs`."""
    return pairs.index.get_indexer(pairs[["cell_type"]].sample(frac=1, random_state=seed).index)


def _labelled(shuffled, pseudolabels, genes, label_columns):
    """The label part of a training set: the shuffled rows' pairs, then the pseudolabels' ((pairs, values) or
    None), encoded with their vocabulary."""
    appended = 0 if pseudolabels is None else len(pseudolabels[0])
    if appended:
        shuffled = pd.concat([shuffled, pseudolabels[0]], ignore_index=True)
    vocab = Vocabulary().fit(shuffled.cell_type, shuffled.sm_name)
    return dict(train_inputs=vocab.transform(shuffled.cell_type, shuffled.sm_name), pseudolabel_rows=np.int64(appended),
                genes=np.asarray(genes, dtype=str), vocabulary=np.asarray(vocab.labels_, dtype=str),
                labels=np.asarray(label_columns))


def run_fingerprint(training_set, seed, name):
    """What every entry of one training run shares: training arrays, genes, vocabulary, seed and stage."""
    digest = hashlib.sha256(np.ascontiguousarray(training_set["train_inputs"]).tobytes())
    tablefile.update_digest(digest, training_set["train_targets"])
    for key in ("genes", "vocabulary"):
        digest.update(np.ascontiguousarray(training_set[key]).tobytes())
    digest.update(json.dumps([seed, name]).encode())
    return digest.hexdigest()


class Stage:
    """A stage's entries and what they share (genes, vocabulary, clip bounds, SVD codec), and once
    fitted, each entry's rep weights: `weights[entry.id]` is one weight list per rep (a stage
    loaded from its bundle reads an entry's weights when they are asked for). `pseudolabel_pairs`
    are the label codes of the pairs whose pseudolabels it trained on (none for a stage without)."""

    def __init__(self, name, entries, genes, vocabulary, clip_low, clip_high, codec, run, dataset_id="",
                 weights=None, pseudolabel_pairs=None, label_columns="", seed=None):
        self.name, self.entries, self.genes, self.vocabulary = name, list(entries), list(genes), list(vocabulary)
        self.clip_low, self.clip_high, self.codec, self.run = clip_low, clip_high, codec, run
        self.dataset_id, self.label_columns = dataset_id, label_columns  # as encode() recorded them
        self.seed = seed  # the base seed it was trained with (None: a bundle that predates its record)
        self.weights = {} if weights is None else weights
        self.encoded_targets = None  # (rows, k) components of the training targets: set by `start`, what `fit` trains on
        self.pseudolabel_pairs = np.zeros((0, 2), np.int32) if pseudolabel_pairs is None else pseudolabel_pairs

    @classmethod
    def start(cls, name, entries, training_set, seed, log=print):
        """Unfitted: the codec fitted once at the stage's largest n_dim (each entry truncates it). An entry
        whose n_dim exceeds what the training targets allow (rows x genes) trains at the largest allowed,
        a departure said in one line."""
        targets = training_set["train_targets"]
        limit = n_dim_limit(targets)
        over = [e for e in entries if e.n_dim > limit]
        if over:
            log(f"[{name}] departing from the configuration: {targets.shape[0]} training rows x {targets.shape[1]} "
                f"genes allow at most {limit} SVD components; entries {', '.join(f'{e.id} (n_dim {e.n_dim})' for e in over)} "
                f"train at n_dim {limit}")
            entries = cap_n_dim(entries, limit)
        memory.require_fit(entries, *targets.shape, len(training_set["vocabulary"]), f"stage {name}")  # before any work
        codec = SVDCodec(max(e.n_dim for e in entries)).fit(targets, log)
        appended = int(training_set.get("pseudolabel_rows", 0))  # the last rows, as encode() put them
        stage = cls(name, entries, training_set["genes"], training_set["vocabulary"], training_set["clip_low"],
                    training_set["clip_high"], codec, run_fingerprint(training_set, seed, name),
                    str(training_set.get("dataset_id", "")),
                    pseudolabel_pairs=training_set["train_inputs"][len(targets) - appended:],
                    label_columns=str(training_set.get("labels", "")), seed=seed)
        # the targets' SVD components, computed once (an entry trains on the first n_dim): what training holds
        stage.encoded_targets = codec.transform(targets)
        return stage

    def entry_fingerprint(self, entry):
        """What one entry's weights were made from: the run's fingerprint, its hyperparameters and the package's
        version (an upgrade retrains rather than mixing models of two versions in one stage)."""
        return hashlib.sha256(json.dumps([self.run, entry.as_dict(), version.VERSION], sort_keys=True).encode()).hexdigest()

    def fit(self, training_set, seed, log=print, status=lambda entry: (False, ""),
            on_fitted=lambda entry, weights: None, executor=None):
        """Train every entry's reps on `training_set` (the one `start` was given), entry by entry.

        status(entry) -> (done, note): done skips the entry (its weights stay where they are, e.g.
        in its bundle); the note leads its log line. on_fitted(entry, rep_weights) runs after each
        trained entry (`train` saves its bundle there). A stop signal raises Interrupted at the end of
        an epoch or between entries. executor: a concurrent.futures.Executor (a Dask cluster's,
        pertnet/cluster.py) that trains the entries side by side instead (`fit_on`).
        """
        if executor is not None:
            return self.fit_on(executor, training_set, seed, log, status, on_fitted)
        from pertnet import training  # TensorFlow loads only where something trains

        inputs = training_set["train_inputs"]
        flops = {e.id: training.training_flops(e, len(inputs)) for e in self.entries}
        progress = training.Progress(self.name, sum(flops.values()), log)
        trained, skipped = [], []
        for number, entry in enumerate(self.entries, 1):
            stopping.check()  # between entries: the one before is saved
            label = f"[{self.name}] entry {entry.id} ({number}/{len(self.entries)})"
            done, note = status(entry)
            if done:
                log(f"{label}: {note}")
                progress.total -= flops[entry.id]
                skipped.append(entry)
                continue
            log(f"{label}: {note}family {entry.architecture}, {entry.reps} reps x {entry.epochs} epochs, "
                f"batch {entry.bs}, n_dim {entry.n_dim}")
            started = time.perf_counter()
            self.weights[entry.id] = training.train_entry(
                entry, inputs, self.encoded_targets[:, :entry.n_dim], len(self.vocabulary),
                training.rep_seeds(seed, self.name, entry.id, entry.reps),
                on_epoch=progress.epoch_callback(label, entry, flops[entry.id]))
            on_fitted(entry, self.weights[entry.id])
            gc.collect()  # the entry's traced graph sits in reference cycles: free it now, memory stays flat
            progress.done += flops[entry.id]
            trained.append(entry)
            log(f"{label}: saved {entry.reps} reps in {time.perf_counter() - started:.1f}s, "
                f"about {progress.eta()} left{memory.peak_note()}")
        kept = f" (entries {', '.join(e.id for e in skipped)})" if skipped else ""
        log(f"[{self.name}] trained {len(trained)} entries ({sum(e.reps for e in trained)} model-reps), skipped "
            f"{len(skipped)} already saved ({sum(e.reps for e in skipped)} model-reps){kept}, in "
            f"{time.perf_counter() - progress.start:.1f}s")
        return self

    def fit_on(self, executor, training_set, seed, log=print, status=lambda entry: (False, ""),
               on_fitted=lambda entry, weights: None, every=30.0):
        """`fit` with each entry's whole rep stack one task of `executor`: the tasks train side by side
        wherever the executor runs them, each the computation the serial loop runs (the same arrays,
        seeds and stack), so the weights are the same; on_fitted runs here as each one arrives. A line
        at least every `every` seconds says how many are done and the time left. A stop signal
        cancels what has not finished (the entries saved so far stay saved)."""
        from pertnet import training  # the task's function; the executor's workers load TensorFlow

        inputs = training_set["train_inputs"]
        started, pending = time.perf_counter(), {}
        for number, entry in enumerate(self.entries, 1):
            done, note = status(entry)
            label = f"[{self.name}] entry {entry.id} ({number}/{len(self.entries)})"
            if done:
                log(f"{label}: {note}")
                continue
            task = executor.submit(training.train_entry, entry, inputs, self.encoded_targets[:, :entry.n_dim],
                                   len(self.vocabulary), training.rep_seeds(seed, self.name, entry.id, entry.reps))
            pending[task] = entry
            log(f"{label}: {note}sent to the cluster: family {entry.architecture}, {entry.reps} reps x "
                f"{entry.epochs} epochs, batch {entry.bs}, n_dim {entry.n_dim}")
        flops = {e.id: training.training_flops(e, len(inputs)) for e in pending.values()}
        total, done_flops, said = sum(flops.values()), 0.0, time.perf_counter()
        try:
            while pending:
                finished, _ = futures.wait(pending, timeout=1.0, return_when=futures.FIRST_COMPLETED)
                arrived = []
                for task in finished:
                    entry = pending.pop(task)
                    if stopping.requested() is not None and (task.cancelled() or task.exception() is not None):
                        continue  # Ctrl-C reaches a local cluster's workers too: the stop, not an error
                    self.weights[entry.id] = task.result()
                    on_fitted(entry, self.weights[entry.id])
                    done_flops += flops[entry.id]
                    arrived.append(entry)
                stopping.check()  # every entry that arrived is saved
                if arrived or time.perf_counter() - said >= every:
                    elapsed = time.perf_counter() - started
                    left = f"about {elapsed / done_flops * (total - done_flops):.0f}s left" if done_flops else "time left ?"
                    saved = f" (saved: {', '.join(f'entry {e.id}' for e in arrived)})" if arrived else ""
                    log(f"[{self.name}] cluster: {len(flops) - len(pending)} of {len(flops)} entries trained{saved}, "
                        f"{elapsed:.0f}s so far, {left}")
                    said = time.perf_counter()
        finally:
            for task in pending:  # a stop or an error: what has not finished is not wanted any more
                task.cancel()
        log(f"[{self.name}] trained {len(flops)} entries on the cluster in {time.perf_counter() - started:.1f}s")
        return self

    def encode_pairs(self, cell_types, compounds, source):
        """Label codes of pairs, against the vocabulary the stage was trained with."""
        return Vocabulary.from_labels(self.vocabulary).transform(cell_types, compounds, source=source)

    def predict(self, inputs, with_spread=False):
        """The stage's prediction of label codes (rows, 2): (rows, genes) in `self.genes` order.

        Per entry, the median over its reps of the decoded outputs; then the weighted mean over
        entries and the clip to the training bounds (docs/method.md, section 5). with_spread:
        (prediction, the ensemble's spread), what intervals scale with (`ensemble.Ensemble.spread`).
        """
        parts = [part for _, *part in self.predict_blocks(inputs, with_spread)]
        joined = [np.concatenate(arrays) for arrays in zip(*parts)]
        return tuple(joined) if with_spread else joined[0]

    def predict_blocks(self, inputs, with_spread=False, log=lambda line: None, every=30.0):
        """`predict` a block of PAIRS_AT_ONCE pairs at a time: yields (rows: a slice, prediction[, spread]),
        so that tens of thousands of pairs are written as they come, never held. A line at least every
        `every` seconds says how many are done and the time left."""
        pace = Pace(log, every)
        for start in range(0, len(inputs), PAIRS_AT_ONCE):
            rows = slice(start, min(start + PAIRS_AT_ONCE, len(inputs)))
            block = self._predict_block(inputs[rows], with_spread)  # nothing else of the block's is held
            yield (rows, *block) if with_spread else (rows, block)
            del block
            pace.tick(rows.stop, len(inputs), f"[{self.name}] predicted {rows.stop} of {len(inputs)} pairs")

    def _predict_block(self, inputs, with_spread):
        combined = self.ensemble()
        for entry in self.entries:  # one entry's outputs in memory at a time
            if with_spread:
                prediction, variance = self.entry_prediction(entry, inputs, with_variance=True)
            else:
                prediction, variance = self.entry_prediction(entry, inputs), None
            combined.add(prediction, entry.weight, variance)
            del prediction, variance
        return (combined.result(), combined.spread()) if with_spread else combined.result()

    def entry_prediction(self, entry, inputs, with_variance=False):
        """The entry's prediction of label codes: the median over its reps of their decoded outputs
        (with_variance: and their variance)."""
        return self.decoded(entry, self.entry_components(entry, inputs), with_variance)

    def entry_components(self, entry, inputs):
        """Each rep's output for label codes: (reps, rows, the entry's n_dim) SVD components."""
        return architectures.predict(entry, [np.stack(ws) for ws in zip(*self.weights[entry.id])], inputs)

    def decoded(self, entry, components, with_variance=False):
        """The entry's prediction from its reps' components (`entry_components`): their decoded median."""
        return ensemble.decoded_median(components, self.codec.truncate(entry.n_dim).inverse_transform,
                                       with_variance=with_variance)

    def ensemble(self):
        """An empty `ensemble.Ensemble` of this stage: add each entry's prediction with its weight."""
        return ensemble.Ensemble(self.clip_low, self.clip_high)


def fit_stages_side_by_side(stages, training_sets, seeds, entry, on_epoch=None, share=1.0, executor=None):
    """Train `entry` for several stages at once: stages of as many training rows and labels (the
    folds of a cross-validation), every stage's reps side by side in one stack, each on its own
    rows. Each stage gets what its own `fit` would give it, up to float rounding; one traced
    training loop instead of one per stage is what makes it faster. Where all of them at once would
    go over their `share` of the CLI's memory budget, they train in as few smaller stacks as stay
    within it (cross-validation gives each group of folds a share of what is left).

    Returns a `SideBySide`: trained here (executor None), or its stacks sent to `executor` (a Dask
    cluster's) as tasks, the same computations, whose `wait` sets the stages' weights."""
    rows, vocab_size = len(training_sets[0]["train_inputs"]), len(stages[0].vocabulary)
    together = memory.side_by_side(entry, rows, vocab_size, len(stages), share)
    chunks = [slice(first, first + together) for first in range(0, len(stages), together)]
    work = SideBySide(entry, [(stages[chunk], training_sets[chunk], seeds[chunk]) for chunk in chunks], executor)
    if executor is None:
        work.train_here(on_epoch)
    return work


def _stack(stages, training_sets, seeds, entry):
    """The arguments of `training.train_entry` for the stages' reps of `entry` in one stack."""
    from pertnet import training

    inputs = np.concatenate([np.repeat(ts["train_inputs"][None], entry.reps, 0) for ts in training_sets])
    targets = np.concatenate([np.repeat(s.encoded_targets[None, :, :entry.n_dim], entry.reps, 0) for s in stages])
    rep_seeds = [rep for s, seed in zip(stages, seeds) for rep in training.rep_seeds(seed, s.name, entry.id, entry.reps)]
    return entry, inputs, targets, len(stages[0].vocabulary), rep_seeds


class SideBySide:
    """One entry's stacks for several stages (`fit_stages_side_by_side`; chunks: (stages, their training sets,
    their seeds) of each stack): trained here, each stack made as its turn comes (a stack copies its stages'
    targets: one at a time is what the memory budget counted), or tasks of an executor until `wait` collects
    them (a stop signal cancels them there)."""

    def __init__(self, entry, chunks, executor=None):
        from pertnet import training

        self.entry, self.chunks = entry, chunks
        self.tasks = [executor.submit(training.train_entry, *_stack(*chunk, entry)) for chunk in chunks] if executor else []

    def train_here(self, on_epoch):
        from pertnet import training

        for chunk in self.chunks:
            self._assign(chunk[0], training.train_entry(*_stack(*chunk, self.entry), on_epoch))
            gc.collect()  # the traced graph sits in reference cycles: free it now
            memory.give_back()

    def wait(self):
        """Set the stages' weights from the tasks, waiting for them; a stop signal raises Interrupted."""
        for (stages, *_), task in zip(self.chunks, self.tasks):
            while not task.done():
                futures.wait([task], timeout=1.0)
                stopping.check()
            self._assign(stages, task.result())

    def cancel(self):
        for task in self.tasks:
            task.cancel()

    def _assign(self, stages, weights):
        reps = self.entry.reps
        for number, stage in enumerate(stages):
            stage.weights[self.entry.id] = weights[number * reps:(number + 1) * reps]


def combine(entry_predictions, weights, clip_low, clip_high):
    """The ensemble of entry predictions: their weighted mean, clipped per gene to the training bounds."""
    combined = ensemble.Ensemble(clip_low, clip_high)
    for prediction, weight in zip(entry_predictions, weights):
        combined.add(prediction, weight)
    return combined.result()
