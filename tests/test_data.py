import numpy as np
import pandas as pd
import pytest

from pertnet import UserError, data, schemas


def test_gene_columns_are_every_column_no_format_declares(tiny_source):
    train = pd.read_parquet(tiny_source / "de_train.parquet")
    genes = schemas.gene_columns(train)
    assert genes == [c for c in train.columns if c not in schemas.DE_TRAIN.names]
    assert schemas.gene_columns(["id", "split", "cell_type", "A1BG", "sm_name", "ZZEF1"]) == ["A1BG", "ZZEF1"]
    assert genes == sorted(genes)


def test_read_de_train_validates_and_keeps_genes(tiny_source):
    train = data.read_de_train(tiny_source / "de_train.parquet")
    assert list(train.columns[:2]) == schemas.PAIR and len(train) == 614
    assert train[schemas.gene_columns(train)].dtypes.unique().tolist() == [np.float32]


def read_submission(path, id_map, genes):
    """A submission's values in id_map's order, gathered from its blocks of rows."""
    values = np.full((len(id_map), len(genes)), np.nan, np.float32)
    for positions, block in data.submission_blocks(path, id_map, genes):
        values[positions] = block
    return values


def test_submission_format_round_trip(tmp_path, tiny_source):
    id_map = data.read_id_map(tiny_source / "id_map.csv")
    genes = data.read_gene_order(tiny_source / "sample_submission.csv", id_map)
    values = np.random.default_rng(0).normal(size=(len(id_map), len(genes))).astype(np.float32)
    path = data.write_submission(tmp_path / "s.csv", id_map["id"], genes, values)
    written = pd.read_csv(path)
    assert list(written.columns) == ["id", *genes]
    assert written["id"].tolist() == id_map["id"].tolist()
    assert np.array_equal(written[genes].to_numpy(np.float32), values)  # shortest repr round-trips float32
    assert np.array_equal(read_submission(path, id_map, genes), values)
    assert [p.name for p in tmp_path.iterdir()] == ["s.csv"]  # no temporary file left behind
    shuffled = written.sample(frac=1, random_state=0)[["id", *genes[::-1]]]  # rows and columns in any order
    shuffled.to_csv(tmp_path / "shuffled.csv", index=False)
    assert np.array_equal(read_submission(tmp_path / "shuffled.csv", id_map, genes), values)


@pytest.mark.parametrize("bad,message", [("text", "not a valid csv file"), ("1.5", "whole numbers"),
                                         ("short", "fields but its header names")])
def test_a_damaged_submission_is_named(tmp_path, tiny_source, bad, message):
    id_map = data.read_id_map(tiny_source / "id_map.csv")
    genes = data.read_gene_order(tiny_source / "sample_submission.csv", id_map)
    frame = pd.DataFrame(np.zeros((len(id_map), len(genes))), columns=genes).assign(id=id_map["id"])[["id", *genes]]
    if bad == "short":
        frame = frame.drop(columns=genes[-1]).rename(columns={genes[-2]: genes[-1]})
        frame.to_csv(tmp_path / "s.csv", index=False)
        lines = (tmp_path / "s.csv").read_text().splitlines()
        (tmp_path / "s.csv").write_text("\n".join([lines[0].replace(genes[-1], f"{genes[-2]},{genes[-1]}"), *lines[1:]]))
    else:
        frame = frame.astype(object)
        frame.iloc[3, 0 if bad == "1.5" else 2] = bad
        frame.to_csv(tmp_path / "s.csv", index=False)
    with pytest.raises(UserError, match=message) as error:
        read_submission(tmp_path / "s.csv", id_map, genes)
    assert "s.csv" in str(error.value)


def test_missing_inputs_name_the_files_and_the_demo(tmp_path):
    with pytest.raises(UserError, match=r"de_train.parquet, id_map.csv, sample_submission.csv.*Kaggle.*--demo"):
        data.require_inputs(tmp_path)
