"""The eight architecture families (docs/method.md, section 3) as plain layer lists, and their inference.

Pure Python and NumPy: what a network is (its layers, weight shapes, loss) and what a trained one
predicts, without TensorFlow, so that `predict` starts in a second or two instead of the six
TensorFlow takes to import. `nets` builds the same layer lists as Keras models and as the
batched `RepStack` that trains all reps of an entry at once.
"""
import numpy as np

MAE_FAMILIES = (1, 2, 3, 4)


def hidden_layers(entry):
    """The hidden block of an entry as a list of (kind, argument) pairs.

    kinds: ("dense", (units, activation)), ("bn", None), ("relu", None), ("dropout", rate).
    """
    e, family = entry, entry.architecture

    def dense(units, activation=None):
        return ("dense", (units, activation))

    bn, relu = ("bn", None), ("relu", None)

    def block(i):
        return [dense(getattr(e, f"dense_{i}")), bn, relu, ("dropout", getattr(e, f"dropout_{i}"))]

    if family == 1:
        return [dense(256), bn, relu, ("dropout", 0.2), dense(1024, "relu"), bn, ("dropout", 0.2)]
    if family == 2:  # ReLU twice after the second Dense: as in the original
        return [dense(e.dense_1), bn, relu, ("dropout", e.dropout_1),
                dense(e.dense_2, "relu"), relu, bn, ("dropout", e.dropout_2)]
    if family in (3, 7):
        return [layer for i in (1, 2, 3, 4) for layer in block(i)]
    if family in (4, 8):
        return [layer for i in (1, 2, 3) for layer in block(i)]
    if family == 5:
        return [dense(256), bn, relu, ("dropout", e.dropout_1),
                dense(1024), bn, relu, ("dropout", e.dropout_2)]
    if family == 6:  # dropout_2 twice, dropout_1 never: as in the original
        return [bn, dense(e.dense_1), relu, ("dropout", e.dropout_2),
                dense(e.dense_2), bn, relu, ("dropout", e.dropout_2)]
    raise ValueError(f"unknown architecture family {family!r}; expected 1-8")


def loss_name(entry):
    return "mae" if entry.architecture in MAE_FAMILIES else "mrrmse"


def layers(entry):
    """The whole network as (kind, argument) pairs: embedding, the hidden block, the output Dense."""
    return [("embedding", entry.emb_out), *hidden_layers(entry), ("dense", (entry.n_dim, None))]


def layer_widths(entry):
    """The output width of every layer of `layers(entry)`."""
    widths, width = [], 2 * entry.emb_out
    for kind, arg in layers(entry):
        width = arg[0] if kind == "dense" else width
        widths.append(width)
    return widths


def dense_widths(entry):
    """The widths the Dense layers map between: the flattened embedding's, then each Dense's units."""
    return [2 * entry.emb_out] + [arg[0] for kind, arg in layers(entry) if kind == "dense"]


def weight_specs(entry, vocab_size):
    """(shape, Keras-default initializer) of each weight of the plain model, in get_weights() order."""
    specs = []
    for (kind, arg), width in zip(layers(entry), [2 * entry.emb_out, *layer_widths(entry)]):  # input widths
        if kind == "embedding":
            specs.append(((vocab_size, arg), "uniform"))
        elif kind == "dense":
            specs += [((width, arg[0]), "glorot_uniform"), ((arg[0],), "zeros")]
        elif kind == "bn":  # gamma, beta, moving mean, moving variance
            specs += [((width,), "ones"), ((width,), "zeros"), ((width,), "zeros"), ((width,), "ones")]
    return specs


WEIGHTS_PER_LAYER = {"embedding": 1, "dense": 2, "bn": 4}
BN_MOMENTUM, BN_EPSILON = 0.99, 1e-3  # Keras' BatchNormalization defaults


def predict(entry, weights, inputs):
    """All reps' outputs for label codes `inputs` (rows, 2): (reps, rows, n_dim), in inference mode.

    weights: `RepStack`'s weight list (the plain model's get_weights() with a leading rep axis).
    Computes what the Keras model computes (dropout off, BatchNormalization by its moving
    statistics), up to float32 rounding.
    """
    remaining = iter(weights)
    for kind, arg in layers(entry):
        params = [next(remaining) for _ in range(WEIGHTS_PER_LAYER.get(kind, 0))]
        if kind == "embedding":
            h = params[0][:, np.asarray(inputs)].reshape(len(params[0]), len(inputs), 2 * arg)
        elif kind == "dense":
            h = h @ params[0] + params[1][:, None, :]
            if arg[1] == "relu":
                h = np.maximum(h, 0)
        elif kind == "bn":
            h = batch_normalize(h, *params)  # gamma, beta, moving mean, moving variance
        elif kind == "relu":
            h = np.maximum(h, 0)
    return h


def batch_normalize(h, gamma, beta, mean, variance):
    """Keras' BatchNormalization by the given statistics, per rep (h: (R, B, width)); NumPy or TensorFlow."""
    scale = gamma / (variance + BN_EPSILON) ** 0.5
    return h * scale[:, None, :] + (beta - mean * scale)[:, None, :]
