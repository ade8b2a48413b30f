"""The eight architecture families (docs/method.md, section 3) as plain layer lists, and their inference.

Pure Python and NumPy: what a network is (its layers, weight shapes, loss) and what a trained one
predicts, without TensorFlow, so that `predict` starts in a second or two instead of the six
TensorFlow takes to import. `nets` builds the same layer lists as Keras models and as the
batched `RepStack` that trains all reps of an entry at once.
"""
from typing import Callable, NamedTuple

import numpy as np


# -- the layers a network is made of ------------------------------------------------------------

class Embedding(NamedTuple):
    width: int                # per label; the two labels' embeddings are flattened side by side


class Dense(NamedTuple):
    units: int
    activation: str = None    # None or "relu"


class BatchNorm(NamedTuple):
    """Keras' BatchNormalization, with its default momentum and epsilon."""


class ReLU(NamedTuple):
    """A separate ReLU layer."""


class Dropout(NamedTuple):
    rate: float


# -- the eight families, one record each -------------------------------------------------------

class Family(NamedTuple):
    fields: tuple                # the hidden-layer hyperparameters its entries carry
    loss: str                    # "mae" or "mrrmse"
    hidden: Callable             # entry -> its hidden layers
    unused: tuple = ()           # fields its entries carry that its network never reads


def _block(entry, i):
    return [Dense(getattr(entry, f"dense_{i}")), BatchNorm(), ReLU(), Dropout(getattr(entry, f"dropout_{i}"))]


_FOUR = ("dense_1", "dense_2", "dense_3", "dense_4", "dropout_1", "dropout_2", "dropout_3", "dropout_4")
_THREE = ("dense_1", "dense_2", "dense_3", "dropout_1", "dropout_2", "dropout_3")
_TWO = ("dense_1", "dense_2", "dropout_1", "dropout_2")


def _blocks(count):
    return lambda e: [layer for i in range(1, count + 1) for layer in _block(e, i)]


FAMILIES = {
    # widths and dropouts fixed
    1: Family((), "mae", lambda e: [Dense(256), BatchNorm(), ReLU(), Dropout(0.2),
                                    Dense(1024, "relu"), BatchNorm(), Dropout(0.2)]),
    # ReLU twice after the second Dense: as in the original
    2: Family(_TWO, "mae", lambda e: [Dense(e.dense_1), BatchNorm(), ReLU(), Dropout(e.dropout_1),
                                      Dense(e.dense_2, "relu"), ReLU(), BatchNorm(), Dropout(e.dropout_2)]),
    3: Family(_FOUR, "mae", _blocks(4)),
    4: Family(_THREE, "mae", _blocks(3)),
    5: Family(("dropout_1", "dropout_2"), "mrrmse", lambda e: [Dense(256), BatchNorm(), ReLU(), Dropout(e.dropout_1),
                                                               Dense(1024), BatchNorm(), ReLU(), Dropout(e.dropout_2)]),
    # dropout_2 twice, dropout_1 never: as in the original, whose entries still carry a dropout_1
    6: Family(_TWO, "mrrmse", lambda e: [BatchNorm(), Dense(e.dense_1), ReLU(), Dropout(e.dropout_2),
                                         Dense(e.dense_2), BatchNorm(), ReLU(), Dropout(e.dropout_2)],
              unused=("dropout_1",)),
    7: Family(_FOUR, "mrrmse", _blocks(4)),
    8: Family(_THREE, "mrrmse", _blocks(3)),
}
HIDDEN_FIELDS = _FOUR  # every hidden-layer field some family has


def hidden_layers(entry):
    """The hidden block of an entry: its family's layers with the entry's widths and rates."""
    return FAMILIES[entry.architecture].hidden(entry)


def loss_name(entry):
    return FAMILIES[entry.architecture].loss


def layers(entry):
    """The whole network: embedding, the hidden block, the output Dense."""
    return [Embedding(entry.emb_out), *hidden_layers(entry), Dense(entry.n_dim)]


def layer_widths(entry):
    """The output width of every layer of `layers(entry)`."""
    widths, width = [], 2 * entry.emb_out
    for layer in layers(entry):
        width = layer.units if isinstance(layer, Dense) else width
        widths.append(width)
    return widths


def dense_widths(entry):
    """The widths the Dense layers map between: the flattened embedding's, then each Dense's units."""
    return [2 * entry.emb_out] + [layer.units for layer in layers(entry) if isinstance(layer, Dense)]


def weight_specs(entry, vocab_size):
    """(shape, Keras-default initializer) of each weight of the plain model, in get_weights() order."""
    specs = []
    for layer, width in zip(layers(entry), [2 * entry.emb_out, *layer_widths(entry)]):  # input widths
        if isinstance(layer, Embedding):
            specs.append(((vocab_size, layer.width), "uniform"))
        elif isinstance(layer, Dense):
            specs += [((width, layer.units), "glorot_uniform"), ((layer.units,), "zeros")]
        elif isinstance(layer, BatchNorm):  # gamma, beta, moving mean, moving variance
            specs += [((width,), "ones"), ((width,), "zeros"), ((width,), "zeros"), ((width,), "ones")]
    return specs


WEIGHTS_PER_LAYER = {Embedding: 1, Dense: 2, BatchNorm: 4}
BN_MOMENTUM, BN_EPSILON = 0.99, 1e-3  # Keras' BatchNormalization defaults


def predict(entry, weights, inputs):
    """All reps' outputs for label codes `inputs` (rows, 2): (reps, rows, n_dim), in inference mode.

    weights: `RepStack`'s weight list (the plain model's get_weights() with a leading rep axis).
    Computes what the Keras model computes (dropout off, BatchNormalization by its moving
    statistics), up to float32 rounding.
    """
    remaining = iter(weights)
    for layer in layers(entry):
        params = [next(remaining) for _ in range(WEIGHTS_PER_LAYER.get(type(layer), 0))]
        if isinstance(layer, Embedding):
            h = params[0][:, np.asarray(inputs)].reshape(len(params[0]), len(inputs), 2 * layer.width)
        elif isinstance(layer, Dense):
            h = h @ params[0] + params[1][:, None, :]
            if layer.activation == "relu":
                h = np.maximum(h, 0)
        elif isinstance(layer, BatchNorm):
            h = batch_normalize(h, *params)  # gamma, beta, moving mean, moving variance
        elif isinstance(layer, ReLU):
            h = np.maximum(h, 0)
    return h


def batch_normalize(h, gamma, beta, mean, variance):
    """Keras' BatchNormalization by the given statistics, per rep (h: (R, B, width)); NumPy or TensorFlow."""
    scale = gamma / (variance + BN_EPSILON) ** 0.5
    return h * scale[:, None, :] + (beta - mean * scale)[:, None, :]
