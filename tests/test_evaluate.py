"""python -m evaluate: the CV folds on the real pair structure (stage_2 keeping its pseudolabels),
scoring a submission against a truth file (the end-to-end --cv run, with its JSON, plot and
calibration, is in tests/test_intervals.py)."""
import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, dirs, run_cli
from pertnet import UserError, alignment, cli, crossval, data, evaluation, folds, schemas, tablefile
from pertnet.options import Options

PAIRS = ROOT / "pertnet" / "resources" / "competition_pairs.csv"
T_AND_NK = ["NK cells", "T cells CD4+", "T cells CD8+", "T regulatory cells"]  # the author's folds


def test_cv_folds_hold_out_each_t_and_nk_cell_types_test_compounds():
    pairs = pd.read_csv(PAIRS)
    train, test = pairs[pairs.split == "train"].reset_index(drop=True), pairs[pairs.split == "test"]
    scheme = folds.design_scheme(train[schemas.PAIR], test, "de_train")  # the rule, fed the competition's design
    assert scheme.name == "cell_type" and not scheme.notes
    assert [cell_type for cell_type, _ in scheme.folds] == T_AND_NK
    test_compounds = set(test.sm_name)  # the compounds whose B / Myeloid profiles are the test
    for cell_type, held_out in scheme.folds:
        held = train[held_out]
        expected = train[(train.cell_type == cell_type) & train.sm_name.isin(test_compounds)]
        assert sorted(map(tuple, held[schemas.PAIR].values)) == sorted(map(tuple, expected[schemas.PAIR].values))
        assert len(held) == (127 if cell_type == "T cells CD8+" else 129)
        training_pairs = set(map(tuple, train[~held_out][schemas.PAIR].values))
        assert not training_pairs & set(map(tuple, held[schemas.PAIR].values))
        # every held-out pair stays encodable: its cell type and compound occur in the fold's training rows
        assert set(held.cell_type) <= set(train[~held_out].cell_type)
        assert set(held.sm_name) <= set(train[~held_out].sm_name)


def write_submission(tiny_data, path, values=None, drop=0, shuffle=True):
    """A submission of the truth's pairs (id + genes, rows shuffled): the truth itself unless `values`."""
    truth = pd.read_parquet(tiny_data / evaluation.TRUTH_FILES[0])
    id_map = pd.read_csv(tiny_data / data.ID_MAP_FILE)
    genes = schemas.gene_columns(truth)
    frame = id_map.merge(truth, on=schemas.PAIR)[["id", *genes]]
    if values is not None:
        frame[genes] = values
    if shuffle:
        frame = frame.sample(frac=1, random_state=0)
    frame.iloc[drop:].to_csv(path, index=False)
    return path


def test_a_perfect_submission_scores_perfectly_beside_the_baselines(tmp_path, tiny_data):
    submission = write_submission(tiny_data, tmp_path / "perfect.csv")
    report, _ = evaluation.score_submission(submission, tiny_data / evaluation.TRUTH_FILES[0], tiny_data, "perfect")
    model = report["scores"]["model"]["overall"]
    assert model["mrrmse"] == pytest.approx(0) and model["pearson"] == pytest.approx(1)
    assert set(report["scores"]) == {"model", "zeros", "compound_mean", "cell_type_mean", "training_mean"}
    assert set(report["scores"]["model"]["by_cell_type"]) == {"B cells", "Myeloid cells"}
    best = report["scores"][report["best_baseline"]]["overall"]["mrrmse"]
    assert best == min(report["scores"][k]["overall"]["mrrmse"] for k in report["scores"] if k != "model")
    assert report["improvement"]["percent"] == pytest.approx(100)


def test_submission_scores_match_the_metrics_on_rows_in_truth_order(tmp_path, tiny_data):
    truth = pd.read_parquet(tiny_data / evaluation.TRUTH_FILES[0])
    genes = schemas.gene_columns(truth)
    noise = np.random.default_rng(0).normal(size=(len(truth), len(genes)))
    id_map = pd.read_csv(tiny_data / data.ID_MAP_FILE)
    ordered_truth = id_map.merge(truth, on=schemas.PAIR)[genes].to_numpy()
    submission = write_submission(tiny_data, tmp_path / "noisy.csv", ordered_truth + noise)
    report, _ = evaluation.score_submission(submission, tiny_data / evaluation.TRUTH_FILES[0], tiny_data, "noisy")
    expected = np.mean(np.sqrt(np.mean(noise ** 2, axis=1)))
    assert report["scores"]["model"]["overall"]["mrrmse"] == pytest.approx(expected)


def test_mismatched_rows_and_nan_predictions_are_clear_errors(tmp_path, tiny_data):
    truth = tiny_data / evaluation.TRUTH_FILES[0]
    short = write_submission(tiny_data, tmp_path / "short.csv", drop=2)
    with pytest.raises(UserError, match="2 missing"):
        evaluation.score_submission(short, truth, tiny_data, "short")
    frame = pd.read_csv(write_submission(tiny_data, tmp_path / "nan.csv", shuffle=False))
    frame.iloc[3, 5] = np.nan
    frame.to_csv(tmp_path / "nan.csv", index=False)
    with pytest.raises(UserError, match="1 NaN"):
        evaluation.score_submission(tmp_path / "nan.csv", truth, tiny_data, "nan")
    frame.drop(columns=frame.columns[7]).to_csv(tmp_path / "gene.csv", index=False)
    with pytest.raises(UserError, match="1 missing"):
        evaluation.score_submission(tmp_path / "gene.csv", truth, tiny_data, "gene")


def test_truth_files_pandas_wrote_or_as_csv_score_the_same(tmp_path, tiny_data):
    """A parquet truth is read a block of genes at a time with pyarrow (pertnet/evaluation.py): the
    index pandas stores as a column is not a gene, float32 genes are numbers, text genes an error."""
    truth_path = tiny_data / evaluation.TRUTH_FILES[0]
    truth = pd.read_parquet(truth_path)
    genes = schemas.gene_columns(truth.columns)
    noise = np.random.default_rng(1).normal(size=(len(truth), len(genes)))
    submission = write_submission(tiny_data, tmp_path / "noisy.csv", noise)
    expected = evaluation.score_submission(submission, truth_path, tiny_data, "noisy")[0]["scores"]["model"]
    truth.sample(frac=1, random_state=0).to_parquet(tmp_path / "indexed.parquet")  # its index: a column
    truth.astype({gene: np.float32 for gene in genes}).to_parquet(tmp_path / "float32.parquet")
    truth.to_csv(tmp_path / "truth.csv", index=False)
    for name in ("indexed.parquet", "float32.parquet", "truth.csv"):
        scores = evaluation.score_submission(submission, tmp_path / name, tiny_data, "noisy")[0]["scores"]["model"]
        assert scores["overall"] == pytest.approx(expected["overall"], rel=1e-6), name
    truth.assign(**{genes[3]: "n.a."}).to_parquet(tmp_path / "text.parquet")
    with pytest.raises(UserError, match=r"text\.parquet: .*gene column"):
        evaluation.score_submission(submission, tmp_path / "text.parquet", tiny_data, "noisy")


def test_scores_and_worst_rows_are_the_same_whatever_the_blocks(tmp_path, tiny_data, monkeypatch):
    """The files are read by blocks into tables and scored a block of rows at a time (pertnet/alignment.py):
    blocks of 7 genes of the truth, 5 rows of the submission and 32 truth rows give the very same numbers."""
    truth = pd.read_parquet(tiny_data / evaluation.TRUTH_FILES[0])
    noise = np.random.default_rng(2).normal(size=(len(truth), len(schemas.gene_columns(truth))))
    submission = write_submission(tiny_data, tmp_path / "noisy.csv", noise)
    expected, details = evaluation.score_submission(submission, tiny_data / evaluation.TRUTH_FILES[0], tiny_data, "n")
    monkeypatch.setattr(tablefile, "BLOCK_BYTES", 7 * 4 * len(truth))
    monkeypatch.setattr(data, "SUBMISSION_BLOCK_BYTES", 5 * 8 * noise.shape[1])
    monkeypatch.setattr(alignment, "ROWS_AT_ONCE", 32)
    report, small = evaluation.score_submission(submission, tiny_data / evaluation.TRUTH_FILES[0], tiny_data, "n")
    assert report["scores"] == expected["scores"] and len(truth) > 2 * 32
    assert [(name, list(errors)) for name, errors in small["worst"]] == \
        [(name, list(errors)) for name, errors in details["worst"]]


def test_scoring_a_submission_does_not_import_tensorflow(tmp_path, tiny_data, monkeypatch):
    """Only --cv trains: loading TensorFlow would add seconds and 600 MB to every score table."""
    monkeypatch.setenv("PYTHONPROFILEIMPORTTIME", "1")  # -X importtime: each imported module on stderr
    result = run_cli("evaluate", "--submission", write_submission(tiny_data, tmp_path / "perfect.csv"),
                     "--truth", tiny_data / evaluation.TRUTH_FILES[0], "--data-dir", tiny_data, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "improves MRRMSE" in result.stdout
    imported = {line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert "pandas" in imported and not {"tensorflow", "keras"} & imported


def test_option_errors_are_one_line(tmp_path, tiny_data, capsys):
    import evaluate
    for args, message in ((["--cv"], "--cv needs --stage"),
                          (["--stage", "simple", "--reps", "2"], "--cv only"),
                          (["--stage", "simple", "--cv", "--truth", "t.csv"], "no --submission or --truth")):
        assert cli.run(evaluate.main, [*args, *map(str, dirs(tmp_path, tiny_data))]) == 2
        assert message in capsys.readouterr().err


def test_stage_2_folds_keep_every_pseudolabel_in_training(tmp_path, tiny_data, monkeypatch):
    submissions = tmp_path / "submissions"
    submissions.mkdir()
    write_submission(tiny_data, submissions / "stage_1_submission.csv")  # stands in for stage_1's
    captured = []

    encode = crossval.encode_rows

    def first_fold_only(*args):
        captured.append(encode(*args))
        raise KeyError("stop after the first fold")

    monkeypatch.setattr(crossval, "encode_rows", first_fold_only)
    with pytest.raises(KeyError, match="first fold"):
        crossval.cross_validate(Options("stage_2", tiny_data, models_dir=tmp_path / "models",
                                        submissions_dir=submissions))
    assert not list(tmp_path.glob(".pertnet-cv-*"))  # its work folder went with the error
    labels = captured[0]["vocabulary"]
    training_pairs = {(labels[c], labels[s]) for c, s in captured[0]["train_inputs"]}
    id_map = pd.read_csv(tiny_data / data.ID_MAP_FILE)
    train = pd.read_parquet(tiny_data / data.TRAIN_FILE)
    held_out = train[folds.design_scheme(train[schemas.PAIR], id_map, "de_train").folds[0][1]]
    assert len(training_pairs) == len(captured[0]["train_inputs"]) == len(train) - len(held_out) + len(id_map)
    assert set(map(tuple, id_map[schemas.PAIR].values)) <= training_pairs
    assert not set(map(tuple, held_out[schemas.PAIR].values)) & training_pairs
    # as the original: the fold's de_train rows shuffled, then the pseudolabels appended in id_map's order
    appended = [(labels[c], labels[s]) for c, s in captured[0]["train_inputs"][-len(id_map):]]
    assert appended == list(map(tuple, id_map[schemas.PAIR].values))
