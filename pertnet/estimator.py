"""The method as one estimator, in scikit-learn's habits: hyperparameters at construction, `fit`
returns the estimator, what fitting learnt in attributes ending in `_`.

Everything that trains goes through it: the commands (pertnet/pipeline.py, which add files,
resumption and locks around it), cross-validation and tuning (pertnet/crossval.py: one estimator
per fold, the folds of a group fitted side by side by `fit_side_by_side`) and the benchmark method
(through the pipeline). `pertnet.fit` and `pertnet.load` are its doors for a notebook
(`pertnet.cross_validate`, pertnet/crossval.py, a third).

    model = PertNet("stage_1", reps=2).fit(de_train)      # a DataFrame, or an AnnData
    prediction = model.predict(id_map)                     # a DataFrame: id, cell_type, sm_name, genes
    model.save("models")                                   # what `python -m predict` reads
"""
import hashlib
import inspect
import logging
import sys
from pathlib import Path

import numpy as np

from pertnet import bundle, data, defaults, intervals, outputs, schemas
from pertnet.errors import UserError
from pertnet.labels import Labels
from pertnet.entries import Entry, departure, stage_entries
from pertnet.stage import Stage, encode
from pertnet.stage import fit_stages_side_by_side


class PertNet:
    """A stage of the method: its entries (each a network trained `reps` times), fitted on training
    rows of (cell type, perturbation) pairs, predicting every gene of other pairs.

    stage: simple, stage_1 or stage_2. stage_2 trains on its own pairs' pseudolabels, stage_1's
      prediction of them: `fit` needs those pairs, and fits stage_1 first (kept as `source_`).
    entries: the stage's entries (Entry objects or plain dicts as pertnet/defaults.py writes them);
      None: the package's. reps, epochs: override every entry's (a quick look, not the method).
    seed: base seed of the row shuffle and of every rep. layer: an AnnData's layer of the targets
      (None: sign_log10_pval where present, else X). verbose: True prints the progress lines the
      commands print, False is quiet, a logging.Logger or level logs them, a function receives each line.
    cell_type_column, perturbation_columns: the columns (an AnnData's obs keys) naming a row's cell type
      and its perturbation; each combination of the perturbation columns (a compound and its dose) is one
      label (pertnet/labels.py). ignore_columns: columns that are neither labels nor genes. replicates:
      None refuses rows that repeat a label combination, "mean" averages them.

    Fitted: `stage_` (the trained `pertnet.stage.Stage`), `genes_`, `vocabulary_`, `dataset_id_`; and
    `calibration_` (pertnet/intervals.py) once `pertnet.cross_validate` has run it, or loaded with it.
    """

    def __init__(self, stage="stage_1", *, entries=None, reps=None, epochs=None, seed=defaults.SEED, layer=None,
                 cell_type_column="cell_type", perturbation_columns=("sm_name",), ignore_columns=(), replicates=None,
                 verbose=True):
        self.stage, self.entries, self.reps, self.epochs = stage, entries, reps, epochs
        self.seed, self.layer, self.verbose = seed, layer, verbose
        self.cell_type_column, self.perturbation_columns = cell_type_column, perturbation_columns
        self.ignore_columns, self.replicates = ignore_columns, replicates

    # scikit-learn's estimator contract, written out: importing sklearn.base would add most of a second to
    # every command that loads a model (predict among them)
    @classmethod
    def _parameter_names(cls):
        return [name for name in inspect.signature(cls.__init__).parameters if name != "self"]

    def get_params(self, deep=True):
        """The constructor's parameters, as scikit-learn's `clone` and model selection read them."""
        return {name: getattr(self, name) for name in self._parameter_names()}

    def set_params(self, **parameters):
        """Change constructor parameters (a fitted model keeps what it learnt until the next `fit`)."""
        unknown = sorted(set(parameters) - set(self._parameter_names()))
        if unknown:
            raise ValueError(f"PertNet has no parameter(s) {', '.join(unknown)}; its parameters are "
                             f"{', '.join(self._parameter_names())}")
        for name, value in parameters.items():
            setattr(self, name, value)
        return self

    def __repr__(self):
        defaults_ = {name: p.default for name, p in inspect.signature(type(self).__init__).parameters.items()}
        changed = [f"{name}={value!r}" for name, value in self.get_params().items()
                   if not (isinstance(value, type(defaults_[name])) and value == defaults_[name])]
        return f"PertNet({', '.join(changed)})"

    def _require_fitted(self, doing):
        if not hasattr(self, "stage_"):
            raise UserError(f"{doing}: this PertNet is not fitted yet; call fit(data) first, or pertnet.load(models_dir, "
                            "stage=...) a trained one")

    def labels(self):
        """The label columns this estimator reads (`pertnet.labels.Labels`)."""
        perturbation = [self.perturbation_columns] if isinstance(self.perturbation_columns, str) \
            else self.perturbation_columns
        ignore = [self.ignore_columns] if isinstance(self.ignore_columns, str) else self.ignore_columns
        return Labels(self.cell_type_column, tuple(perturbation), tuple(ignore), self.replicates)

    def fit(self, data_, pairs=None):
        """Fit on `data_` (a de_train-shaped DataFrame: the label columns, by default cell_type and sm_name,
        then one column per gene; or an AnnData whose obs has the label columns). `pairs` (id_map-shaped: the
        label columns, and optionally id) are stage_2's pairs to predict, whose pseudolabels it trains on."""
        train, dataset_id = data.training_data(data_, self.layer, self.labels())
        self._drop_other_calibration(train)
        training_set = self.training_set(train, self.pseudolabels(train, pairs))
        training_set["dataset_id"] = dataset_id or ""
        return self.start(training_set).train(training_set)

    def data_digest(self, train):
        """A digest of validated training rows, with the settings that decide what is learnt from them."""
        digest = hashlib.sha256(repr([self.stage, self.seed, self.stage_entries()]).encode())
        return data.update_digest(digest, train, schemas.gene_columns(train.columns)).hexdigest()

    def _drop_other_calibration(self, train):
        """A calibration made by `pertnet.cross_validate` on other data or settings than this fit's no longer
        describes the model's errors: let it go, and say so."""
        if getattr(self, "calibration_", None) is None:
            return
        if getattr(self, "calibrated_on_", None) != self.data_digest(train):
            self.log("the model's calibration was made on other data or settings than this fit's: dropped; run "
                     "pertnet.cross_validate(model, data, pairs) again for intervals")
            del self.calibration_
            self.__dict__.pop("calibrated_on_", None)

    def training_set(self, train, pseudolabels=None):
        """The encoded training set (`pertnet.stage.encode`) of validated training rows and pseudolabel rows
        ((pairs, values) or None): what `start` and `train` take."""
        return encode(train, schemas.gene_columns(train.columns), self.seed, pseudolabels, self.labels().as_json())

    def pseudolabels(self, train, pairs):
        """stage_2's pseudolabel rows, (their pairs, their values): its source stage (fitted on `train`, validated
        training rows, and kept as `source_`) predicting `pairs`; None for a stage without."""
        if self.stage not in defaults.PSEUDOLABEL_SOURCE:
            return None
        if pairs is None:
            raise UserError(f"{self.stage} trains on its pairs' pseudolabels: give it the pairs to predict "
                            "(pairs=, id_map-shaped)")
        self.source_ = PertNet(defaults.PSEUDOLABEL_SOURCE[self.stage], reps=self.reps, epochs=self.epochs,
                               seed=self.seed, verbose=self.verbose).fit(train)
        genes = schemas.gene_columns(train.columns)
        canonical = data.pairs_frame(pairs, self.labels())[schemas.PAIR]
        return canonical.reset_index(drop=True), self.source_.predict(canonical)[genes].to_numpy(np.float32)

    def start(self, training_set):
        """The unfitted stage of an encoded training set (`pertnet.stage.encode`): what `train` fits.
        The commands save what it shares before training (pertnet/pipeline.py)."""
        if departure(self.stage, self.reps, self.epochs):
            self.log(departure(self.stage, self.reps, self.epochs))
        self.stage_ = Stage.start(self.stage, self.stage_entries(), training_set, self.seed, self.log)
        self.genes_, self.vocabulary_, self.dataset_id_ = self.stage_.genes, self.stage_.vocabulary, self.stage_.dataset_id
        return self

    def train(self, training_set, status=lambda entry: (False, ""), on_fitted=lambda entry, weights: None,
              executor=None):
        """Train the started stage entry by entry (`pertnet.stage.Stage.fit`: status and on_fitted are
        the commands' hooks to skip saved entries and to save each one; executor: a Dask cluster's,
        pertnet/cluster.py). In a notebook, with verbose=True, progress is a bar (one step per entry)
        instead of the printed lines."""
        bar = _notebook_bar(len(self.stage_.entries), f"[{self.stage}] entries") if self.verbose is True else None
        if bar is None:
            self.stage_.fit(training_set, self.seed, self.log, status, on_fitted, executor)
            return self

        def fitted(entry, weights):
            on_fitted(entry, weights)
            bar.set_postfix_str(f"entry {entry.id} saved")
            bar.update(1)

        def done_or_not(entry):
            done, note = status(entry)
            if done:
                bar.update(1)
            return done, note

        try:
            self.stage_.fit(training_set, self.seed, lambda line: None, done_or_not, fitted, executor)
        finally:
            bar.close()
        return self

    def encode_pairs(self, pairs, source):
        """The label codes of `pairs` (cell_type, sm_name) against the fitted vocabulary; `source` names them
        in the message where a label is unknown."""
        return self.stage_.encode_pairs(pairs.cell_type, pairs.sm_name, source=source)

    def entry_components(self, entry, inputs):
        """One fitted entry's reps' outputs for label codes (`Stage.entry_components`); the entry's weights are
        let go, as cross-validation asks of it entry by entry."""
        components = self.stage_.entry_components(entry, inputs)
        del self.stage_.weights[entry.id]
        return components

    def stage_entries(self):
        """The entries this estimator trains, typed and with reps / epochs applied."""
        if self.entries is None:
            return stage_entries(self.stage, self.reps, self.epochs)
        return [(e if isinstance(e, Entry) else Entry.from_dict(e, f"entries of {self.stage}"))
                .with_overrides(self.reps, self.epochs) for e in self.entries]

    def predict(self, pairs, as_anndata=False, interval=None):
        """Every gene of each pair (id_map-shaped: the label columns the model was fitted with, optionally
        id), in the order given: a DataFrame of id, the label columns, then the genes; as_anndata: the
        benchmark's prediction AnnData (obs: the label columns, by id; layer `prediction`).

        interval: a coverage level (0.5 to 0.99) for bounds from `calibration_` (pertnet.cross_validate
        makes it): an `outputs.IntervalPrediction` of DataFrames (prediction, lower, upper, uncertainty), or
        with as_anndata one AnnData that also has the layers lower and upper and obs uncertainty."""
        self._require_fitted("predict")
        obs_names = list(pairs.obs_names) if hasattr(pairs, "obs") and "id" not in pairs.obs else None
        stage = self.stage_
        pairs = data.pairs_frame(pairs, Labels.from_json(stage.label_columns))
        inputs = stage.encode_pairs(pairs.cell_type, pairs.sm_name, source="the pairs to predict")
        if interval is None:
            values, bounds = stage.predict(inputs), None
        else:
            level = intervals.checked_level(interval, "interval")
            if getattr(self, "calibration_", None) is None:
                raise UserError("interval: this model has no calibration; run pertnet.cross_validate(model, data, "
                                "pairs) on its training data first, or load a models folder with calibration.npz")
            values, bounds = self.calibration_.predict(stage, inputs, level, "the model's calibration")
        fmt = outputs.FORMATS[outputs.BENCHMARK if as_anndata else outputs.SUBMISSION]
        result = fmt.build(pairs, stage.genes, values, stage, bounds)
        if as_anndata and obs_names is not None:  # an AnnData of pairs without ids keeps its own names
            result.obs_names = obs_names
        return result

    def save(self, models_dir):
        """Write the fitted stage as models_dir/<stage>/, the bundles `python -m predict --models-dir
        models_dir` reads."""
        self._require_fitted("save")
        models_dir = Path(models_dir)
        for entry in self.stage_.entries:
            bundle.save_entry(models_dir, self.stage_, entry, self.stage_.weights[entry.id], "pertnet.fit")
        bundle.save_shared(models_dir, self.stage_)
        if getattr(self, "calibration_", None) is not None:
            self.calibration_.save(bundle.calibration_path(models_dir, self.stage))
        return self

    @classmethod
    def load(cls, models_dir, stage="stage_1", entries=None, configuration="pertnet/defaults.py"):
        """The estimator of models_dir/<stage>/ (saved by `save` or trained by `python -m train`), as
        fitted. entries: None restores those the bundles recorded (the package's, for bundles that predate
        the record); given (a --stages file's), they are checked against the bundles, and configuration
        names where they come from in the message where they differ."""
        if entries is None:
            entries = bundle.recorded_entries(models_dir, stage)
            configuration = configuration if entries is None else f"{bundle.stage_dir(models_dir, stage)}/shared.npz"
        model = cls(stage, entries=entries)
        model.stage_ = bundle.load_stage(models_dir, stage, model.stage_entries(), configuration)
        recorded = Labels.from_json(model.stage_.label_columns)
        model.cell_type_column, model.perturbation_columns = recorded.cell_type, recorded.perturbation
        model.genes_, model.vocabulary_, model.dataset_id_ = (model.stage_.genes, model.stage_.vocabulary,
                                                             model.stage_.dataset_id)
        calibration = bundle.calibration_path(models_dir, stage)
        if calibration.is_file():
            model.calibration_ = intervals.Calibration.load(calibration, stage)
        return model

    def log(self, line):
        """A progress line, as `verbose` asks: True prints it, False drops it, a logging.Logger or a logging level
        (e.g. logging.INFO) logs it (to the "pertnet" logger), a function receives it."""
        if isinstance(self.verbose, logging.Logger):
            self.verbose.info(line)
        elif isinstance(self.verbose, int) and not isinstance(self.verbose, bool):
            logging.getLogger("pertnet").log(self.verbose, line)
        elif callable(self.verbose):
            self.verbose(line)
        elif self.verbose:
            print(line, flush=True)


def _notebook_bar(total, description):
    """A progress bar where the process is a Jupyter kernel (tqdm's notebook bar where ipywidgets is
    installed, its text bar otherwise); None in a terminal or a log, which keep one line per entry."""
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    if type(shell).__name__ != "ZMQInteractiveShell":
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit="entry")


def fit_side_by_side(models, training_sets, entry, on_epoch=None, share=1.0, executor=None):
    """Fit one entry of several started estimators at once, each on its own training set: the folds of a
    cross-validation (pertnet/crossval.py), as many training rows and labels each. Each gets what its own
    `train` would give it, up to float rounding (`pertnet.stage.fit_stages_side_by_side`). executor: a Dask
    cluster's; the fit is then tasks, and the returned `SideBySide`'s `wait` sets the weights."""
    return fit_stages_side_by_side([model.stage_ for model in models], training_sets, [model.seed for model in models],
                                   entry, on_epoch, share, executor)


def fit(data_, stage="stage_1", *, pairs=None, **parameters):
    """A fitted `PertNet`: `PertNet(stage, **parameters).fit(data_, pairs)` (the parameters: see `PertNet`)."""
    return PertNet(stage, **parameters).fit(data_, pairs)


def load(models_dir, stage="stage_1", entries=None):
    """A `PertNet` read from models_dir/<stage>/: see `PertNet.load`."""
    return PertNet.load(Path(models_dir), stage, entries)
