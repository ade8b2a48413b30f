import dataclasses

import keras
import numpy as np
import tensorflow as tf

from pertnet import architectures, nets, training
from pertnet.entries import stage_entries


def test_rep_seeds_are_distinct_and_stable():
    seeds = training.rep_seeds(42, "stage_1", "3", 10)
    assert len(set(seeds)) == 10
    assert seeds == training.rep_seeds(42, "stage_1", "3", 10)
    assert seeds != training.rep_seeds(43, "stage_1", "3", 10)
    assert seeds != training.rep_seeds(42, "stage_2", "3", 10)
    assert training.derive_seed(42, "stage_1", "3", "rep", 0) == 1137520523  # the same on every machine


def test_flop_count_of_the_simple_stage():
    entry = stage_entries("simple")[0]
    assert training.dense_weights(entry) == 96 * 712 + 712 * 400 + 400 * 232 + 232 * 216 + 216 * 100
    assert abs(training.training_flops(entry, 614) / 1e12 - 0.27) < 0.01  # the 0.27 TFLOP


def small_problem(entry, rows=50, vocab=12, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, vocab, (rows, 2)).astype(np.int32)
    z = rng.normal(size=(rows, entry.n_dim)).astype(np.float32)
    return x, z


def test_a_rep_in_the_stack_takes_the_step_it_would_take_alone(monkeypatch):
    """One step of the stack equals, rep by rep, Keras' Adam on the plain model's own gradient.

    The reference densifies the embedding gradient: Keras 3's Adam squares the rows of a sparse
    gradient before summing repeated labels, which is not Adam (Keras 2, which the original ran
    on, summed them first). Adam's first step is about lr x sign(gradient): where a gradient is
    at rounding level (a Dense bias that feeds BatchNormalization has a true gradient of zero),
    its sign, and so the step, depends on the CPU's summation order. Only elements whose gradient
    is far above rounding are compared: over 95% of the elements of every weight but that bias.
    """
    entry = dataclasses.replace(stage_entries("stage_1")[0], epochs=1, bs=64, n_dim=5)
    x, z = small_problem(entry)
    hidden = architectures.hidden_layers
    no_dropout = lambda e: [architectures.Dropout(0.0) if isinstance(layer, architectures.Dropout) else layer  # noqa: E731
                            for layer in hidden(e)]
    for module in (architectures, nets):  # family 1 has fixed dropout 0.2: off, to compare deterministic steps
        monkeypatch.setattr(module, "hidden_layers", no_dropout)
    seeds = [3, 4]
    stacked = training.train_entry(entry, x, z, 12, seeds)
    for rep, seed in enumerate(seeds):
        plain = nets.build_model(entry, 12)
        plain.set_weights([w[rep] for w in training.initial_weights(entry, 12, seeds)])
        order = np.random.default_rng(seed).permutation(len(x))
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.abs(z[order] - plain(x[order], training=True)))
        gradients = [tf.convert_to_tensor(g) for g in tape.gradient(loss, plain.trainable_variables)]
        keras.optimizers.Adam(entry.lr).apply_gradients(zip(gradients, plain.trainable_variables))
        gradient = {v.path: g.numpy() for v, g in zip(plain.trainable_variables, gradients)}
        compared = []  # (elements compared, elements) of every weight but the bias that feeds BatchNormalization
        for mine, variable in zip(stacked[rep], plain.weights):
            g = gradient.get(variable.path)  # None: BatchNormalization's moving statistics, all compared
            resolved = np.full(variable.shape, True) if g is None else np.abs(g) >= 1e-4  # far above rounding
            assert np.allclose(mine[resolved], variable.numpy()[resolved], atol=2e-5), variable.path
            if variable is not plain.weights[2]:  # embeddings, kernel, bias: the bias that feeds BatchNormalization
                compared.append((resolved.sum(), resolved.size))
        done, total = np.sum(compared, axis=0)
        assert done > 0.95 * total, f"only {done} of {total} elements have a gradient far above rounding"


def test_training_learns_and_repeats_itself():
    entry = dataclasses.replace(stage_entries("stage_1")[0], epochs=30, bs=16, n_dim=4)
    x, z = small_problem(entry)
    losses = []
    first = training.train_entry(entry, x, z, 12, [1, 2], on_epoch=lambda e, l: losses.append(l))
    assert losses[-1].mean() < 0.8 * losses[0].mean()
    again = training.train_entry(entry, x, z, 12, [1, 2])
    assert all(np.array_equal(a, b) for a, b in zip(first[0] + first[1], again[0] + again[1]))
    assert not np.array_equal(first[0][-2], first[1][-2])  # reps differ


def test_a_rep_learns_the_same_whichever_reps_train_beside_it():
    """Initialisation, shuffles and dropout masks come from the rep's own seed alone."""
    entry = dataclasses.replace(stage_entries("stage_1")[0], epochs=3, bs=16, n_dim=4)  # dropout 0.2 on
    x, z = small_problem(entry)
    beside_others = training.train_entry(entry, x, z, 12, [5, 6, 7])[1]
    alone = training.train_entry(entry, x, z, 12, [6])[0]
    assert all(np.allclose(a, b, atol=1e-5) for a, b in zip(beside_others, alone))


def test_reps_with_their_own_rows_learn_what_they_learn_alone():
    """Cross-validation trains folds side by side: each rep its own inputs and targets."""
    entry = dataclasses.replace(stage_entries("stage_1")[0], epochs=3, bs=16, n_dim=4)
    (x1, z1), (x2, z2) = small_problem(entry, seed=1), small_problem(entry, seed=2)
    together = training.train_entry(entry, np.stack([x1, x2]), np.stack([z1, z2]), 12, [5, 6])
    alone = [training.train_entry(entry, x, z, 12, [seed])[0] for x, z, seed in ((x1, z1, 5), (x2, z2, 6))]
    for rep in range(2):
        assert all(np.allclose(a, b, atol=1e-5) for a, b in zip(together[rep], alone[rep]))
