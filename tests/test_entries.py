import dataclasses

import pytest

import config
from pertnet import UserError
from pertnet.entries import Entry, stage_entries


def test_every_configured_entry_checks_and_gives_back_its_plain_values():
    for stage, values in config.STAGES.items():
        entries = stage_entries(stage)
        assert [e.as_dict() for e in entries] == values
        assert all(isinstance(e, Entry) for e in entries)


def test_overrides_and_selection():
    entries = stage_entries("stage_1", reps=2, epochs=3, ids=["7", "1"])
    assert [(e.id, e.reps, e.epochs) for e in entries] == [("1", 2, 3), ("7", 2, 3)]  # the stage's order
    assert stage_entries("stage_1")[0].reps == 10  # config.py itself is untouched
    with pytest.raises(UserError, match="stage stage_1 has no entries 9; its entries are 1, 2, 3, 5, 6, 7, 8"):
        stage_entries("stage_1", ids=["9"])


def test_entries_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        stage_entries("simple")[0].reps = 3


@pytest.mark.parametrize("change, message", [
    (dict(architecture=9), "architecture must be a family 1-8, got 9"),
    (dict(reps=0), "reps must be a positive whole number, got 0"),
    (dict(bs=64.0), "bs must be a positive whole number, got 64.0"),
    (dict(dropout_1=1.0), "dropout_1 must be a number in [0, 1), got 1.0"),
    (dict(lr=0), "lr must be a number > 0, got 0"),
    (dict(weight=-1), "weight must be a number >= 0, got -1"),
    (dict(dense_3=64), "dense_3 is not a hyperparameter of family 2 (its own: dense_1, dense_2, dropout_1, dropout_2)"),
    (dict(learning_rate=0.1), "unknown field(s) learning_rate"),
    (dict(dense_2=None), "dense_2 is missing"),
])
def test_a_bad_entry_is_one_line_naming_the_file_the_entry_and_the_field(change, message):
    values = {k: v for k, v in {**config.STAGES["stage_1"][1], **change}.items() if v is not None}
    with pytest.raises(UserError) as error:
        Entry.from_dict(values, "tuned.json")
    assert str(error.value).startswith("tuned.json: entry '2': ") and message in str(error.value), error.value


def test_a_missing_base_field_is_named():
    values = dict(config.STAGES["stage_1"][0])
    del values["lr"]
    with pytest.raises(UserError, match="tuned.json: entry '1': missing field\\(s\\) lr"):
        Entry.from_dict(values, "tuned.json")
