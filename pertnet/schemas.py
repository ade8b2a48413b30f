"""Every file format the package reads or writes, declared once, as data.

The readers (`data`, `h5ad`, `bundle`, `pipeline`) check files against these declarations, the
messages name their columns, and docs/formats.md describes the same ones.
A gene column is any column that no format declares (never a hard-coded first gene).
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class Field:
    name: str
    kind: str           # str, int, float, bool; for arrays also the shape
    required: bool
    meaning: str


@dataclass(frozen=True)
class Format:
    file: str
    rows: str            # what one row (or the file) is
    fields: tuple
    genes: str = ""      # what the gene columns hold, where the format has them

    @property
    def required(self):
        return [f.name for f in self.fields if f.required]

    @property
    def names(self):
        return [f.name for f in self.fields]


# A row's labels inside the package: its cell type and its perturbation label (sm_name: the compound, or the
# combination of the perturbation columns, pertnet/labels.py).
PAIR = ["cell_type", "sm_name"]

DE_TRAIN = Format("de_train.parquet", "one row per training (cell_type, sm_name) pair", (
    Field("cell_type", "str", True, "cell type, e.g. 'NK cells'"),
    Field("sm_name", "str", True, "compound name"),
    Field("sm_lincs_id", "str", False, "compound LINCS id (unused)"),
    Field("SMILES", "str", False, "compound structure (unused)"),
    Field("control", "bool", False, "True for the positive controls (unused)"),
    Field("split", "str", False, "the benchmark's split of a row (unused)"),
), genes="float, one column per gene: limma's sign(logFC) * -log10(p); finite")

ID_MAP = Format("id_map.csv", "one row per pair to predict", (
    Field("id", "int", True, "row id of the submission; each once"),
    Field("cell_type", "str", True, "cell type"),
    Field("sm_name", "str", True, "compound name"),
))

SAMPLE_SUBMISSION = Format("sample_submission.csv", "one row per id_map id", (
    Field("id", "int", True, "the id_map ids"),
), genes="the gene columns, in the order a submission must use (their values are not read)")

SUBMISSION = Format("<stage>_submission.csv", "one row per id_map row, in id_map order (also stage_2's "
                    "pseudolabel source)", (Field("id", "int", True, "the id_map id"),),
                    genes="float predictions, in sample_submission order")

H5AD_TRAIN = Format("de_train.h5ad / de_test.h5ad", "the benchmark's dataset: one observation per pair; pertnet reads "
                   "obs, var and the one layer --layer (required below), the demo (pertnet/synthetic/) writes every "
                   "field (all that the benchmark's specs require)", (
    Field("obs/cell_type", "str", True, "cell type"),
    Field("obs/sm_name", "str", True, "compound name"),
    Field("obs/sm_lincs_id", "str", False, "compound LINCS id (unused)"),
    Field("obs/SMILES", "str", False, "compound structure (unused)"),
    Field("obs/split", "str", False, "control, train, public_test or private_test (unused)"),
    Field("obs/control", "bool", False, "True for the positive controls (unused)"),
    Field("var_names", "str", True, "the genes, in the order predictions use"),
    Field("layers/sign_log10_pval", "float64 (obs, var)", True, "sign(logFC) * -log10(P.Value), the Kaggle values: "
                                                                "the targets, unless --layer names another layer"),
    Field("layers/clipped_sign_log10_pval", "float64 (obs, var)", False, "sign_log10_pval clipped to +-4: what "
                                                                         "the benchmark scores"),
    Field("layers/logFC", "float64 (obs, var)", False, "log fold change"),
    Field("layers/P.Value", "float64 (obs, var)", False, "p-value"),
    Field("layers/adj.P.Value", "float64 (obs, var)", False, "Benjamini-Hochberg adjusted p-value"),
    Field("layers/is_de", "bool (obs, var)", False, "P.Value < 0.05"),
    Field("layers/is_de_adj", "bool (obs, var)", False, "adj.P.Value < 0.05"),
    Field("uns/dataset_id", "str", False, "copied into predictions"),
    Field("uns/dataset_name", "str", False, "human-readable name"),
    Field("uns/dataset_summary", "str", False, "one-line description"),
    Field("uns/dataset_description", "str", False, "long description"),
    Field("uns/single_cell_obs", "frame", False, "cell-level metadata (the demo's cells are made up)"),
))

H5AD_PREDICTION = Format("<stage>_prediction.h5ad", "the benchmark's prediction file", (
    Field("obs", "frame", True, "indexed by id (str), with cell_type and sm_name; rows in id_map order"),
    Field("var", "frame", True, "indexed by gene"),
    Field("layers/prediction", "float64 (obs, var)", True, "the predictions (float32, widened: the spec asks for "
                                                           "double)"),
    Field("uns/dataset_id", "str", True, "the training file's dataset_id"),
    Field("uns/method_id", "str", True, "nn_retraining_with_pseudolabels"),
    Field("layers/lower", "float64 (obs, var)", False, "with --interval: the lower bounds"),
    Field("layers/upper", "float64 (obs, var)", False, "with --interval: the upper bounds"),
    Field("obs/uncertainty", "float", False, "with --interval: the pair's uncertainty score (its expected row RMSE)"),
    Field("uns/interval_level", "float", False, "with --interval: the bounds' nominal coverage"),
))

BOUNDS = Format("<stage>_lower.csv, <stage>_upper.csv", "with --interval, beside the submission: one row per id_map row, "
                "in its order", (Field("id", "int", True, "the id_map id"),),
                genes="float bounds, in the submission's gene order")

UNCERTAINTY = Format("<stage>_uncertainty.csv", "with --interval, beside the submission: one row per id_map row, in "
                     "its order", (
    Field("id", "int", True, "the id_map id"),
    Field("cell_type", "str", True, "cell type"),
    Field("sm_name", "str", True, "compound name"),
    Field("uncertainty", "float", True, "the pair's expected row RMSE: rank pairs by it to choose what to trust"),
    Field("level", "float", True, "the nominal coverage of the bounds beside it"),
))

CALIBRATION = Format("models/<stage>/calibration.npz", "what `evaluate --cv` learnt about the stage's errors "
                     "(pertnet/intervals.py)", (
    Field("stage", "str ()", True, "the stage"),
    Field("genes", "str (genes,)", True, "gene order of its arrays: the models'"),
    Field("entries", "str ()", True, "JSON: the entries' hyperparameters as cross-validated; predict refuses others"),
    Field("levels", "float64 (levels,)", True, "the coverage levels kept: 0.50, 0.51, ..., 0.99"),
    Field("beta", "float64 ()", True, "the scale: spread + beta x the gene's median spread (inf: per-gene widths)"),
    Field("spread_median", "float32 (genes,)", True, "each gene's median spread on the out-of-fold rows"),
    Field("quantiles", "float32 (levels, genes)", True, "conformal quantiles of |residual| / scale (inf: not "
                                                         "supported by so few rows)"),
    Field("error_per_spread", "float64 ()", True, "median row RMSE / row RMS spread: the uncertainty score's factor"),
    Field("rows", "int ()", True, "out-of-fold rows it was made from"),
    Field("summary", "str ()", True, "JSON: the cross-fitted coverage, width and interval score of each beta"),
))

# What a training set and the trained stage made from it share.
_TRAINING_SET = (
    Field("genes", "str (genes,)", True, "gene order of the targets and of the models' predictions"),
    Field("vocabulary", "str (labels,)", True, "sorted cell types and compounds; a label's index is its code"),
    Field("clip_low", "float32 (genes,)", True, "per-gene min of the raw training rows"),
    Field("clip_high", "float32 (genes,)", True, "per-gene max of the raw training rows"),
    Field("labels", "str () JSON", False, "the label columns (cell_type, perturbation; pertnet/labels.py); the "
                                          "competition's where absent"),
)

PREPARED = Format("data/prepared/<stage>.npz", "what prepare_data writes and train reads", (
    Field("train_inputs", "int32 (rows, 2)", True, "label codes of the shuffled training rows (pseudolabels included)"),
    Field("targets_file", "str ()", True, "the file beside it holding their gene values: <stage>.targets.<id>.npy, "
          "float32 (rows, genes) in gene order (pertnet/tablefile.py)"),
    Field("pseudolabel_rows", "int ()", False, "how many of them, at the end, are pseudolabels"),
    *_TRAINING_SET,
    Field("test_inputs", "int32 (pairs, 2)", True, "label codes of the id_map pairs"),
    Field("test_ids", "int (pairs,)", True, "their ids"),
    Field("dataset_id", "str ()", True, "an h5ad training file's dataset_id, else empty"),
))

BUNDLE_SHARED = Format("models/<stage>/shared.npz", "what every entry and rep of a trained stage shares", (
    *_TRAINING_SET,
    Field("components", "float32 (k, genes)", True, "SVD basis; an entry with n_dim uses the first n_dim rows"),
    Field("run", "str ()", True, "fingerprint of the training arrays, seed and stage"),
    Field("dataset_id", "str ()", False, "the training file's dataset_id"),
    Field("pseudolabel_pairs", "int32 (pairs, 2)", False, "label codes of the pairs whose pseudolabels it trained on"),
    Field("entries", "str () JSON", False, "the entries as trained, in order (what pertnet.load restores)"),
    Field("seed", "str ()", False, "the base seed it was trained with, as text"),
))

BUNDLE_ENTRY = Format("models/<stage>/model_<id>/entry.json", "one entry's bundle; written after its rep files "
                      "(rep_<r>.npz: one rep's weights w000, w001, ... in the Keras model's get_weights() order), "
                      "so its presence marks the bundle complete", (
    Field("entry", "object", True, "the entry's hyperparameters as trained (overrides applied)"),
    Field("vocab_size", "int", True, "labels the embedding knows"),
    Field("reps", "int", True, "rep files"),
    Field("run", "str", True, "the run fingerprint it was trained in (shared.npz's run)"),
    Field("fingerprint", "str", True, "run + hyperparameters + package version: a rerun skips the entry when "
                                       "it matches"),
    Field("configuration", "str", False, "where its entry came from: config.py, a --stages file or pertnet.fit"),
    Field("version", "str", False, "the package version that trained it (absent in bundles of versions before 1.1.0)"),
))

# Columns that are never genes, in any table the package reads.
NOT_GENES = frozenset(DE_TRAIN.names + ID_MAP.names)


def gene_columns(columns):
    """Every column that no format declares, in file order."""
    return [c for c in columns if c not in NOT_GENES]


def differences(found, expected, shown=3):
    """'N missing (e.g. a, b), N extra (e.g. c)' between two collections ("" where they hold the same
    items); the one wording of every "these differ" message."""
    found, expected = list(found), list(expected)
    found_set, expected_set = set(found), set(expected)
    missing = sorted(item for item in set(expected) if item not in found_set)
    extra = sorted(item for item in set(found) if item not in expected_set)
    if not missing and not extra:
        return ""
    return (f"{len(missing)} missing (e.g. {', '.join(map(str, missing[:shown])) or '-'}), "
            f"{len(extra)} extra (e.g. {', '.join(map(str, extra[:shown])) or '-'})")
