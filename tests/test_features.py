import numpy as np
import pytest
from sklearn.preprocessing import LabelEncoder

from pertnet import UserError
from pertnet.features import Vocabulary


def test_vocabulary_is_what_label_encoder_on_both_columns_gives():
    cells, compounds = ["T cells", "B cells", "T cells"], ["Zeta", "Alpha", "Beta"]
    vocab = Vocabulary().fit(cells, compounds)
    encoder = LabelEncoder().fit(cells + compounds)
    assert vocab.labels_ == list(encoder.classes_)
    expected = np.stack([encoder.transform(cells), encoder.transform(compounds)], axis=1)
    assert np.array_equal(vocab.transform(cells, compounds), expected)
    assert vocab.transform(cells, compounds).dtype == np.int32
    assert len(vocab) == 5


def test_vocabulary_round_trips_through_its_labels():
    vocab = Vocabulary().fit(["b", "a"], ["c"])
    again = Vocabulary.from_labels(vocab.labels_)
    assert np.array_equal(again.transform(["a"], ["c"]), vocab.transform(["a"], ["c"]))


def test_unknown_pairs_are_listed():
    vocab = Vocabulary().fit(["NK cells"], ["Aspirin"])
    with pytest.raises(UserError, match=r"id_map: 1 pair.*\('B cells', 'Aspirin'\)"):
        vocab.transform(["NK cells", "B cells"], ["Aspirin", "Aspirin"])


def test_near_matches_name_the_label_meant():
    vocab = Vocabulary().fit(["NK cells"], ["Belinostat", "Dabrafenib"])
    assert vocab.near_match("Belinostat ") == "Belinostat"
    assert vocab.near_match("nk  CELLS") == "NK cells"
    assert vocab.near_match("Dabrafenb") == "Dabrafenib"
    assert vocab.near_match("Aspirin") is None
    with pytest.raises(UserError, match=r"\('NK cells', 'Belinostat '\).*'Belinostat ' is probably 'Belinostat'"):
        vocab.transform(["NK cells"], ["Belinostat "])
