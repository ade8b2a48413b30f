import numpy as np
import pytest
import tensorflow as tf

import config
from pertnet import architectures, nets, training
from pertnet.entries import stage_entries

ALL_ENTRIES = [(stage, e) for stage in config.STAGES for e in stage_entries(stage)]


def expected_params(entry, vocab):
    """Parameter count from the hyperparameters alone: embedding + Dense (kernel+bias) + 4 per BN unit."""
    total, width = vocab * entry.emb_out, 2 * entry.emb_out
    for layer in architectures.hidden_layers(entry):
        if isinstance(layer, architectures.Dense):
            total, width = total + width * layer.units + layer.units, layer.units
        elif isinstance(layer, architectures.BatchNorm):
            total += 4 * width
    return total + width * entry.n_dim + entry.n_dim


@pytest.mark.parametrize("stage,entry", ALL_ENTRIES, ids=[f"{s}-{e.id}" for s, e in ALL_ENTRIES])
def test_every_entry_builds_with_its_parameter_count_and_loss(stage, entry):
    model = nets.build_model(entry, 152)
    assert model.count_params() == expected_params(entry, 152)
    assert model.output_shape == (None, entry.n_dim)
    expected_loss = "mae" if entry.architecture <= 4 else "row_rmse"
    loss = model.loss if isinstance(model.loss, str) else model.loss.__name__
    assert loss == expected_loss
    assert float(model.optimizer.learning_rate) == pytest.approx(entry.lr)


def test_parameter_counts_given_in_the_spec():
    simple = nets.build_model(stage_entries("simple")[0], 152)
    assert simple.count_params() == 532_860
    assert sum(int(np.prod(w.shape)) for w in simple.trainable_weights) == 529_740
    assert nets.build_model(stage_entries("stage_1")[0], 152).count_params() == 334_402
    entry_8d = next(e for e in stage_entries("stage_2") if e.id == "8d")
    assert nets.build_model(entry_8d, 152).count_params() == 445_966


def test_family_quirks_are_kept():
    entry_2 = stage_entries("stage_1")[1]
    kinds = [type(layer) for layer in architectures.hidden_layers(entry_2)]
    assert kinds[4:7] == [architectures.Dense, architectures.ReLU, architectures.BatchNorm]  # Dense(relu), ReLU again
    assert architectures.hidden_layers(entry_2)[4].activation == "relu"
    entry_6 = stage_entries("stage_1")[4]
    rates = [layer.rate for layer in architectures.hidden_layers(entry_6) if isinstance(layer, architectures.Dropout)]
    assert rates == [entry_6.dropout_2] * 2
    assert architectures.FAMILIES[6].unused == ("dropout_1",)  # carried, never read, never searched


def test_losses_by_hand():
    y, p = np.array([[[0.0, 0.0], [1.0, 1.0]]]), np.array([[[3.0, 4.0], [1.0, 1.0]]])
    assert np.allclose(nets.mae(y, p), [7 / 4])
    assert np.allclose(nets.mrrmse(y, p), [(np.sqrt(12.5) + 0) / 2])


@pytest.mark.parametrize("entry", [stage_entries("stage_1")[i] for i in (0, 1, 4, 6)], ids=lambda e: e.id)
def test_predict_computes_what_each_plain_model_predicts(entry):
    reps, vocab = 3, 20
    weights = training.initial_weights(entry, vocab, [1, 2, 3])
    rng = np.random.default_rng(0)
    # give BN non-trivial moving statistics so inference mode is really compared
    weights = [w + rng.normal(0, 0.1, w.shape).astype(np.float32) if w.ndim == 2 else w for w in weights]
    weights = [np.abs(w) + 0.5 if i in moving_variance_indices(entry) else w for i, w in enumerate(weights)]
    x = rng.integers(0, vocab, (7, 2)).astype(np.int32)
    stacked = architectures.predict(entry, weights, x)
    for rep in range(reps):
        plain = nets.build_model(entry, vocab)
        plain.set_weights([w[rep] for w in weights])
        assert np.allclose(plain.predict(x, verbose=0), stacked[rep], atol=1e-4)


def moving_variance_indices(entry):
    model = nets.build_model(entry, 20)
    return [i for i, w in enumerate(model.weights) if "moving_variance" in w.path]


@pytest.mark.parametrize("stage,entry", ALL_ENTRIES[:9], ids=[f"{s}-{e.id}" for s, e in ALL_ENTRIES[:9]])
def test_weight_specs_follow_the_plain_models_weights(stage, entry):
    shapes = [w.shape for w in nets.build_model(entry, 30).get_weights()]
    assert [shape for shape, _ in architectures.weight_specs(entry, 30)] == shapes


def test_dropout_masks_keep_one_minus_rate_scaled_and_differ_by_rep():
    seeds = tf.constant([[1, 7], [2, 7]], tf.int64)
    masks = nets.dropout_masks(seeds, 400, 250, 0.3).numpy()
    assert masks.shape == (2, 400, 250)
    assert set(np.unique(masks)) == {0.0, np.float32(1 / 0.7)}
    assert abs((masks > 0).mean() - 0.7) < 0.01
    assert not np.array_equal(masks[0], masks[1])
    again = nets.dropout_masks(tf.constant([[2, 7]], tf.int64), 400, 250, 0.3).numpy()
    assert np.array_equal(again[0], masks[1])  # a rep's masks depend on its own seed alone
