"""Tuning as the author did: an optuna study of one entry's hyperparameters, or of a stage's
ensemble weights, minimising the cross-validated MRRMSE of pertnet/crossval.py.

A study lives in a database: an SQLite file under the tuning folder by default, or any URL optuna
takes (postgresql://user@host:port/db), which several processes or machines share: each adds its
--trials to the one study. The entry's own configured values are the first trial. Each trial's
draws are seeded from --seed and the trial's number (workers never repeat each other), while
every trial's CV trains with the same seeds (trials compare fairly). The best result is written
as a stages file (config.py's form) that --stages gives to train, predict, repro and evaluate.
"""
import dataclasses
import hashlib
import json
import os
import socket
import time
from pathlib import Path

import numpy as np
import optuna

from pertnet import cluster, defaults, memory, metrics, plots, stopping
from pertnet.errors import UserError
from pertnet.architectures import FAMILIES
from pertnet.crossval import CrossValidation
from pertnet.entries import read_stages, stage_entries, write_stages
from pertnet.stage import combine
from pertnet.targets import cap_n_dim

WORKER = f"{socket.gethostname()}:{os.getpid()}"
optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial is ours


def search_space(entry, fixed=(), n_dim_limit=None):
    """{field: (kind, low, high, step)} over the hyperparameters of the entry's family (defaults.SEARCH_SPACE),
    less the `fixed` ones (--reps / --epochs); n_dim at most `n_dim_limit`, what the data allows."""
    family = FAMILIES[entry.architecture]
    fields = ["lr", "emb_out", *family.fields, "epochs", "bs", "n_dim"]
    space = {name: tuple(defaults.SEARCH_SPACE[name.split("_")[0] if name[-1].isdigit() else name])
             for name in fields if name not in fixed and name not in family.unused}
    if n_dim_limit is not None and "n_dim" in space:
        kind, low, high, step = space["n_dim"]
        space["n_dim"] = (kind, min(low, n_dim_limit), min(high, n_dim_limit), step)
    return space


def suggest(trial, space):
    """One value per field of `space`, drawn by the trial's sampler."""
    params = {}
    for name, (kind, low, high, step) in space.items():
        if kind == "int":
            params[name] = trial.suggest_int(name, low, high, step=step)
        else:
            params[name] = trial.suggest_float(name, low, high, log=kind == "log")
    return params


class SeededPerTrial(optuna.samplers.BaseSampler):
    """optuna's TPE sampler, its random draws seeded from (seed, trial number): two workers on one
    study draw differently, and the same trial number draws the same on a rerun."""

    def __init__(self, seed):
        self.seed, self._current = seed, (None, None)

    def _tpe(self, trial):
        if self._current[0] != trial.number:
            from pertnet.training import derive_seed

            self._current = (trial.number, optuna.samplers.TPESampler(seed=derive_seed(self.seed, "tune", trial.number)))
        return self._current[1]

    def infer_relative_search_space(self, study, trial):
        return self._tpe(trial).infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):
        return self._tpe(trial).sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self._tpe(trial).sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study, trial):
        self._tpe(trial).before_trial(study, trial)

    def after_trial(self, study, trial, state, values):
        self._tpe(trial).after_trial(study, trial, state, values)


def storage_url(url, tuning_dir):
    """(the URL to open, the URL to show: without its password); default: tuning_dir/optuna.db."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    url = url or f"sqlite:///{Path(tuning_dir) / 'optuna.db'}"
    try:
        return url, make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        raise UserError(f"--storage {url!r} is not a database URL; e.g. sqlite:///tuning/optuna.db or "
                        "postgresql://user@host:5432/db") from None


def open_study(url, shown, name, attrs, seed):
    """The study `name` in the storage at `url`, created if new, with the starting configuration
    (attrs["start"]) as its trial 0; one made for other data, another entry, search space or fixed
    values is refused (its trials would not compare)."""
    from sqlalchemy.engine import make_url

    if url.startswith("sqlite:///"):
        Path(make_url(url).database).parent.mkdir(parents=True, exist_ok=True)
    try:
        storage = _rdb_storage(url)
    except Exception as error:  # unreachable server, refused credentials, missing driver, unwritable file
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        password = make_url(url).password
        raise UserError(f"cannot open the study storage {shown}: "
                        f"{message.replace(password, '***') if password else message}; "
                        "check the URL (--storage), the server and its credentials") from None
    sampler = SeededPerTrial(seed)
    pruner = optuna.pruners.PercentilePruner(75.0, n_startup_trials=4, n_warmup_steps=2)
    try:  # the process that creates the study labels it and queues the starting configuration as trial 0
        study = optuna.create_study(storage=storage, study_name=name, direction="minimize", sampler=sampler,
                                    pruner=pruner)
        for key, value in attrs.items():
            study.set_user_attr(key, value)
        study.enqueue_trial(attrs["start"])
        return study
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(storage=storage, study_name=name, sampler=sampler, pruner=pruner)
    _await_first_trial(study, attrs["start"])
    differ = [key for key in sorted(set(attrs) | set(study.user_attrs)) if attrs.get(key) != study.user_attrs.get(key)]
    if differ:
        raise UserError(f"study {name!r} in {shown} was made for another {', '.join(differ)} "
                        f"({', '.join(f'{k}={_shown_attr(study.user_attrs.get(k))}' for k in differ)}); "
                        "give this search another --study name")
    return study


def _shown_attr(value):
    """A study attribute in a message: a data digest shortened as the study names show it."""
    return value[:8] if isinstance(value, str) and len(value) == 64 else value


def _await_first_trial(study, start, seconds=30):
    """A worker that finds the study another has just created waits for its starting trial, so that
    the author's configuration is trial 0 and runs once; after `seconds` (its creator died) it queues it."""
    waited = 0.0
    while not study.trials and waited < seconds:
        time.sleep(0.2)
        waited += 0.2
    if not study.trials:
        study.enqueue_trial(start, skip_if_exists=True)


def _rdb_storage(url, attempts=5):
    """optuna's storage at `url`; workers that start together on a new database race to create its
    tables, and all but one are refused the first time: they try again."""
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    for attempt in range(attempts):
        try:
            return optuna.storages.RDBStorage(url)
        except (IntegrityError, ProgrammingError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.5 * (attempt + 1))


# ---------------------------------------------------------------- one entry's hyperparameters

@dataclasses.dataclass(frozen=True)
class Search:
    """What a study is asked for, besides the stage (`python -m tune`'s options)."""
    trials: int                  # trials to add
    study: str = None            # its name (default <stage>-entry-<id>-<data>, or <stage>-weights-<data>-<entries>:
                                 # 8 hex digits of the data's digest, CrossValidation.data_digest, and of the
                                 # entries' hyperparameters)
    storage: str = None          # a database URL (default: an SQLite file, tuning_dir/optuna.db)
    tuning_dir: Path = Path("tuning")  # studies, results and cached out-of-fold predictions
    out: Path = None             # the stages file of the best result (default tuning_dir/<study>.json)
    plot: Path = None            # the optimisation history, as a PNG

    def name(self, default):
        return self.study or default

    def out_path(self, name):
        return self.out or Path(self.tuning_dir) / f"{name}.json"


def tune_entry(options, entry_id, search, log=print):
    """Add `search.trials` trials to the study of entry `entry_id`; write the best entry into `search.out`."""
    (base,) = stage_entries(options.stage, ids=[entry_id], stages_file=options.stages_file)  # as configured
    fixed = {k: v for k, v in dict(reps=options.reps, epochs=options.epochs).items() if v is not None}
    url, shown = storage_url(search.storage, search.tuning_dir)
    cluster.require_reachable(options.cluster)
    with CrossValidation.from_files(options, log, search.tuning_dir) as cv:  # read and checked before anything is written
        name, trials = search.name(f"{options.stage}-entry-{entry_id}-{cv.data_digest[:8]}"), search.trials
        (base,) = cap_n_dim([base], cv.n_dim_limit())  # the n_dim the folds allow, as their training caps it
        space = search_space(base, fixed, cv.n_dim_limit())
        start = {name: getattr(base, name) for name in space}
        study = open_study(url, shown, name, dict(kind="entry", stage=options.stage, entry=entry_id, seed=options.seed,
                                                  space={k: list(v) for k, v in space.items()}, fixed=fixed,
                                                  start=start, data=cv.data_digest), options.seed)
        log(f"[tune {name}] {shown}, {cv.describe()}: {_finished(study)} trial(s) so far; adding {trials}; searching "
            f"{', '.join(space)}{'; fixed ' + ', '.join(f'{k} {v}' for k, v in fixed.items()) if fixed else ''}")

        labels = len(set(cv.pairs.cell_type) | set(cv.pairs.sm_name))  # the embedding's rows, for the memory check

        def objective(trial, executor):
            trial.set_user_attr("worker", WORKER)
            entry = dataclasses.replace(base, weight=1, **fixed, **suggest(trial, space))  # alone: weight 1
            too_big = memory.unfit([entry], len(cv.pairs) + cv.pseudolabel_rows, labels)
            if too_big:  # outside what this machine can train: not part of the search space
                trial.set_user_attr("note", too_big)
                raise optuna.TrialPruned()
            scores = []
            for step, result in enumerate(cv.results([entry], log=lambda line: None, executor=executor)):  # as they finish
                scores.append(float(np.mean(np.concatenate([metrics.row_rmse(block.prediction, block.truth)
                                                            for block in result.blocks]))))
                trial.set_user_attr("fold_scores", scores)
                trial.report(float(np.mean(scores)), step)
                if trial.should_prune():
                    raise optuna.TrialPruned()
            return float(np.mean(scores))

        with cluster.executor(options.workers, options.cluster, log) as executor:
            _optimize(study, lambda trial: objective(trial, executor), trials, start, name, log)
        best = dataclasses.replace(base, **study.best_trial.params)  # configured reps (and epochs, where fixed)
        _log_result(study, start, name, log)
        stages = _base_stages(options)
        stages[options.stage] = [best if e.id == entry_id else e for e in stages[options.stage]]
        _write_result(search.out_path(name), stages, study, search.plot, log)
        return study


# ---------------------------------------------------------------- a stage's ensemble weights

def tune_weights(options, search, log=print):
    """Add `search.trials` trials to the study of the stage's ensemble weights, scored on the entries'
    out-of-fold predictions (computed once, cached under its tuning_dir); write the best weights into
    `search.out`."""
    entries = options.entries()
    start = {f"weight_{e.id}": e.weight for e in entries}
    url, shown = storage_url(search.storage, search.tuning_dir)
    cluster.require_reachable(options.cluster)
    with CrossValidation.from_files(options, log, search.tuning_dir) as cv:
        memory.require_weights_search(entries, sum(int(fold.held_out.sum()) for fold in cv.folds), len(cv.genes),
                                      f"tune --weights of {options.stage}")
        fixed = {k: v for k, v in dict(reps=options.reps, epochs=options.epochs).items() if v is not None}
        networks = [{k: v for k, v in e.as_dict().items() if k != "weight"} for e in entries]  # what the weights weigh
        networks_digest = hashlib.sha256(json.dumps(networks, sort_keys=True).encode()).hexdigest()
        name, trials = search.name(f"{options.stage}-weights-{cv.data_digest[:8]}-{networks_digest[:8]}"), search.trials
        study = open_study(url, shown, name, dict(kind="weights", stage=options.stage, entries=networks,
                                                  seed=options.seed, fixed=fixed, start=start, data=cv.data_digest),
                           options.seed)
        if cv.cached(entries, search.tuning_dir) is not None:
            folds = cv.out_of_fold(entries, search.tuning_dir, log)
        else:
            with cluster.executor(options.workers, options.cluster, log) as executor:
                folds = cv.out_of_fold(entries, search.tuning_dir, log, executor)
        log(f"[tune {name}] {shown}, {cv.describe()}: {_finished(study)} trial(s) so far; adding {trials}")

        def objective(trial):
            trial.set_user_attr("worker", WORKER)
            weights = [trial.suggest_float(key, *defaults.WEIGHT_RANGE) for key in start]
            if sum(weights) == 0:
                raise optuna.TrialPruned()
            scores = [metrics.mrrmse(combine(fold["entries"], weights, fold["clip_low"], fold["clip_high"]), fold["truth"])
                      for fold in folds]
            trial.set_user_attr("fold_scores", scores)
            return float(np.mean(scores))

        _optimize(study, objective, trials, start, name, log)
        _log_result(study, start, name, log)
        best = study.best_trial.params
        stages = _base_stages(options)
        stages[options.stage] = [dataclasses.replace(e, weight=best[f"weight_{e.id}"]) for e in stages[options.stage]]
        _write_result(search.out_path(name), stages, study, search.plot, log)
        return study


# ---------------------------------------------------------------- running, reporting, writing

def _optimize(study, objective, trials, start, name, log):
    """study.optimize with a line per trial; a stop signal ends it with what the study keeps."""
    started, mine = time.perf_counter(), []

    def report(study, trial):
        mine.append(trial)
        changed = ", ".join(f"{k} {_shown(v)} (start {_shown(start[k])})" for k, v in trial.params.items()
                            if v != start.get(k)) or "the starting configuration"
        folds = " ".join(f"{s:.4f}" for s in trial.user_attrs.get("fold_scores", []))
        outcome = (f"CV {trial.value:.4f}" if trial.state == optuna.trial.TrialState.COMPLETE
                   else f"{trial.state.name.lower()} after {len(trial.user_attrs.get('fold_scores', []))} fold(s)"
                        + (f" ({trial.user_attrs['note']})" if "note" in trial.user_attrs else ""))
        complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        best = min(complete, key=lambda t: t.value) if complete else None
        left = (time.perf_counter() - started) / len(mine) * (trials - len(mine))
        log(f"[tune {name}] trial {trial.number} ({len(mine)}/{trials} here): {changed}; folds {folds or '-'}; "
            f"{outcome} in {trial.duration.total_seconds():.1f}s; best "
            f"{f'{best.value:.4f} (trial {best.number})' if best else '-'}; about {left:.0f}s left")
        stopping.check()  # between trials; inside one, CV training stops at the end of an epoch

    with stopping.saying_what_was_kept(lambda: f"study {name!r} keeps its {len(study.trials)} trials; rerun the "
                                               "same command to add more"):
        study.optimize(objective, n_trials=trials, callbacks=[report])
    if not any(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials):
        raise UserError(f"study {name!r} has no complete trial yet ({len(study.trials)} pruned or failed, as the "
                        "lines above say); rerun with more --trials")


def _finished(study):
    return sum(t.state.is_finished() for t in study.trials)


def _shown(value):
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _log_result(study, start, name, log):
    """The best trial against the starting (the author's) configuration, as a table."""
    states = [t.state for t in study.trials]
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    author = next((t for t in complete if t.params == start), None)
    best = study.best_trial
    workers = sorted({t.user_attrs.get("worker", "?") for t in study.trials})
    log(f"\n[tune {name}] {len(study.trials)} trials ({states.count(optuna.trial.TrialState.COMPLETE)} complete, "
        f"{states.count(optuna.trial.TrialState.PRUNED)} pruned) by {len(workers)} worker(s)")
    log(f"  {'':<14}{'author':>12}{'best':>12}")
    for key, value in start.items():
        log(f"  {key:<14}{_shown(value):>12}{_shown(best.params[key]):>12}")
    log(f"  {'CV MRRMSE':<14}{(f'{author.value:.4f}' if author else '-'):>12}{best.value:>12.4f}"
        f"{'  (the author' + chr(39) + 's configuration is the best)' if author is best else ''}")


def _base_stages(options):
    """Every stage's entries, from --stages where given, else config.py (what the result updates)."""
    stages = {stage: stage_entries(stage, table=options.stages) for stage in defaults.STAGES}
    if options.stages_file is not None:
        stages.update(read_stages(options.stages_file))
    return stages


def _write_result(path, stages, study, plot_path, log):
    write_stages(path, stages)
    log(f"best -> {path} (use it with --stages {path})")
    if plot_path:
        plots.history(plot_path, study)
        log(f"plot -> {plot_path}")
