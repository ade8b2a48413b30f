"""The CV folds come from the data's design (pertnet/folds.py): the author's rule on any cell types,
the compound-group fallback where it gives fewer than two folds, and a one-line error below that."""
import pandas as pd
import pytest

from pertnet import UserError, folds, synthetic, tuning
from pertnet.entries import stage_entries

CELL_LINES = ["HepG2", "K562", "A549", "MCF7"]


def screen(cell_types=CELL_LINES, compounds=30, **held_out):
    """(training pairs, id_map) of a made-up screen (pertnet/synthetic/)."""
    names = [f"compound {i:02d}" for i in range(1, compounds + 1)]
    _, train, id_map = synthetic.screen_design(cell_types, names, **held_out)
    return train.reset_index(drop=True), id_map


def assert_predictable(train, scheme):
    """Every held-out row keeps its cell type and compound in its fold's training rows."""
    for name, held_out in scheme.folds:
        kept, held = train[~held_out], train[held_out]
        assert held_out.any(), name
        assert set(held.cell_type) <= set(kept.cell_type) and set(held.sm_name) <= set(kept.sm_name), name


def test_another_screen_gets_the_authors_rule_on_its_own_cell_types():
    train, id_map = screen(test_cell_types=2, test_compounds=10)  # A549 and MCF7 lack compounds 21-30
    assert len(train) == 100 and len(id_map) == 20
    scheme = folds.design_scheme(train, id_map, "de_train")
    assert scheme.name == "cell_type" and not scheme.notes
    assert [name for name, _ in scheme.folds] == ["HepG2", "K562"]  # sorted, the test cell types left out
    for name, held_out in scheme.folds:
        held = train[held_out]
        assert set(held.cell_type) == {name} and set(held.sm_name) == set(id_map.sm_name) and len(held) == 10
    assert "A549, MCF7" in scheme.reason
    assert_predictable(train, scheme)


def test_when_every_cell_type_has_pairs_to_predict_the_compounds_are_grouped():
    train, id_map = screen(scattered=20)
    assert set(id_map.cell_type) == set(CELL_LINES)
    scheme = folds.design_scheme(train, id_map, "de_train")
    assert scheme.name == "compound_groups" and len(scheme.folds) == folds.COMPOUND_GROUPS
    assert "gives 0 usable fold(s)" in scheme.reason
    groups = [set(train[held_out].sm_name) for _, held_out in scheme.folds]
    assert sum(map(len, groups)) == len(set().union(*groups))  # each compound in one group
    sizes = [int(held_out.sum()) for _, held_out in scheme.folds]
    assert max(sizes) - min(sizes) <= 3  # balanced by rows, as a GroupKFold
    assert_predictable(train, scheme)


def test_a_fold_whose_rows_would_lose_their_labels_is_skipped_with_a_note():
    train, id_map = screen(["T1", "T2", "T3", "X", "Y"], 6, test_cell_types=2, test_compounds=2)  # X, Y lack 5-6
    train = train[(train.cell_type != "T3") | train.sm_name.isin(["compound 05", "compound 06"])]
    scheme = folds.design_scheme(train.reset_index(drop=True), id_map, "de_train")
    # T3 measured compounds 5 and 6 only: holding its rows out would leave T3 unseen in training
    assert scheme.name == "cell_type" and [name for name, _ in scheme.folds] == ["T1", "T2"]
    assert len(scheme.notes) == 1 and scheme.notes[0].startswith("no fold T3: none of its 2 row(s)")

    only_in_t1 = train[(train.cell_type == "T2") & train.sm_name.isin(["compound 05", "compound 06"])].index
    scheme = folds.design_scheme(train.drop(only_in_t1).reset_index(drop=True), id_map, "de_train")
    assert scheme.name == "compound_groups" and "it gives 1 usable fold(s); no fold T3" in scheme.reason


def test_below_two_folds_is_a_one_line_error_naming_the_minimum():
    train = pd.DataFrame({"cell_type": ["A", "B"], "sm_name": ["x", "y"]})
    with pytest.raises(UserError, match=r"^de_train: cross-validation needs at least 2 folds") as error:
        folds.design_scheme(train, pd.DataFrame({"cell_type": ["A"], "sm_name": ["y"]}), "de_train")
    assert "\n" not in str(error.value)


def test_the_tuning_search_space_shrinks_to_the_n_dim_the_data_allows():
    (entry,) = stage_entries("stage_1", ids=["6"])
    assert tuning.search_space(entry)["n_dim"] == ("int", 32, 256, 1)
    assert tuning.search_space(entry, n_dim_limit=90)["n_dim"] == ("int", 32, 90, 1)
    assert tuning.search_space(entry, n_dim_limit=20)["n_dim"] == ("int", 20, 20, 1)
    assert tuning.search_space(entry, n_dim_limit=600) == tuning.search_space(entry)  # the competition's folds
