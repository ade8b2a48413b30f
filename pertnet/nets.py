"""The eight architecture families (SPEC.md section 3), built two ways from one layer list.

`build_model` gives the plain Keras model of one rep, exactly as the original defined it
(parameter counts, loss, metric). `RepStack` holds the same layers with a leading rep axis
on every weight, so that all reps of an entry train as one batched computation: rep r of a
RepStack computes exactly what the plain model with rep r's weights computes, and the
weight lists line up (`stack.get_weights()[i][r]` is `model.get_weights()[i]`).
"""
import keras
import tensorflow as tf

MAE_FAMILIES = (1, 2, 3, 4)
MRRMSE_FAMILIES = (5, 6, 7, 8)


def hidden_layers(entry):
    """The hidden block of an entry as a list of (kind, argument) pairs.

    kinds: ("dense", (units, activation)), ("bn", None), ("relu", None), ("dropout", rate).
    """
    e, family = entry, entry["architecture"]

    def dense(units, activation=None):
        return ("dense", (units, activation))

    bn, relu = ("bn", None), ("relu", None)

    def block(i):
        return [dense(e[f"dense_{i}"]), bn, relu, ("dropout", e[f"dropout_{i}"])]

    if family == 1:
        return [dense(256), bn, relu, ("dropout", 0.2), dense(1024, "relu"), bn, ("dropout", 0.2)]
    if family == 2:  # ReLU twice after the second Dense: as in the original
        return [dense(e["dense_1"]), bn, relu, ("dropout", e["dropout_1"]),
                dense(e["dense_2"], "relu"), relu, bn, ("dropout", e["dropout_2"])]
    if family in (3, 7):
        return [layer for i in (1, 2, 3, 4) for layer in block(i)]
    if family in (4, 8):
        return [layer for i in (1, 2, 3) for layer in block(i)]
    if family == 5:
        return [dense(256), bn, relu, ("dropout", e["dropout_1"]),
                dense(1024), bn, relu, ("dropout", e["dropout_2"])]
    if family == 6:  # dropout_2 twice, dropout_1 never: as in the original
        return [bn, dense(e["dense_1"]), relu, ("dropout", e["dropout_2"]),
                dense(e["dense_2"]), bn, relu, ("dropout", e["dropout_2"])]
    raise ValueError(f"unknown architecture family {family!r}; expected 1-8")


def mrrmse(y_true, y_pred):
    """Mean over rows of each row's RMSE over the last axis (the competition score)."""
    return tf.reduce_mean(tf.sqrt(tf.reduce_mean(tf.square(y_true - y_pred), axis=-1)), axis=-1)


def mae(y_true, y_pred):
    """Mean absolute error over the last two axes (rows and components)."""
    return tf.reduce_mean(tf.abs(y_true - y_pred), axis=(-2, -1))


def loss_name(entry):
    return "mae" if entry["architecture"] in MAE_FAMILIES else "mrrmse"


def build_model(entry, vocab_size):
    """The plain, compiled Keras model of one rep: labels (batch, 2) -> (batch, n_dim)."""
    inputs = keras.Input(shape=(2,), dtype="int32")
    h = keras.layers.Flatten()(keras.layers.Embedding(vocab_size, entry["emb_out"])(inputs))
    for kind, arg in hidden_layers(entry):
        if kind == "dense":
            h = keras.layers.Dense(arg[0], activation=arg[1])(h)
        elif kind == "bn":
            h = keras.layers.BatchNormalization()(h)
        elif kind == "relu":
            h = keras.layers.ReLU()(h)
        else:
            h = keras.layers.Dropout(arg)(h)
    outputs = keras.layers.Dense(entry["n_dim"])(h)
    model = keras.Model(inputs, outputs, name=f"model_{entry['id']}")
    loss = "mae" if loss_name(entry) == "mae" else _keras_mrrmse
    model.compile(optimizer=keras.optimizers.Adam(entry["lr"]), loss=loss, metrics=[_keras_mrrmse])
    return model


def _keras_mrrmse(y_true, y_pred):
    """MRRMSE as a Keras loss/metric: one value per row, Keras averages over the batch."""
    return tf.sqrt(tf.reduce_mean(tf.square(y_true - y_pred), axis=-1))


_keras_mrrmse.__name__ = "mrrmse"


def layers(entry):
    """The whole network as (kind, argument) pairs: embedding, the hidden block, the output Dense."""
    return [("embedding", entry["emb_out"]), *hidden_layers(entry), ("dense", (entry["n_dim"], None))]


def weight_specs(entry, vocab_size):
    """(shape, Keras-default initializer) of each weight of the plain model, in get_weights() order."""
    specs, width = [], 2 * entry["emb_out"]
    for kind, arg in layers(entry):
        if kind == "embedding":
            specs.append(((vocab_size, arg), "uniform"))
        elif kind == "dense":
            specs += [((width, arg[0]), "glorot_uniform"), ((arg[0],), "zeros")]
            width = arg[0]
        elif kind == "bn":  # gamma, beta, moving mean, moving variance
            specs += [((width,), "ones"), ((width,), "zeros"), ((width,), "zeros"), ((width,), "ones")]
    return specs


WEIGHTS_PER_LAYER = {"embedding": 1, "dense": 2, "bn": 4}
BN_MOMENTUM, BN_EPSILON = 0.99, 1e-3  # Keras' BatchNormalization defaults


class RepStack:
    """All reps of one entry as one network, in plain TensorFlow ops: labels (R, B, 2) -> (R, B, n_dim).

    weights: the plain model's get_weights() list with a leading rep axis on every array.
    Rep r computes exactly what the plain model with weights [w[r] for w in weights] computes.
    """

    def __init__(self, entry, weights):
        self.layers = layers(entry)
        self.variables = [tf.Variable(w) for w in weights]
        self.reps = len(weights[0])
        remaining = iter(self.variables)
        self.params = [[next(remaining) for _ in range(WEIGHTS_PER_LAYER.get(kind, 0))] for kind, _ in self.layers]
        self.trainable = [v for (kind, _), params in zip(self.layers, self.params)
                          for v in (params[:2] if kind == "bn" else params)]  # BN's moving statistics are not

    def get_weights(self):
        return [v.numpy() for v in self.variables]

    def __call__(self, x, training=False, dropout_seeds=None):
        """dropout_seeds (training only): (R, 2) int64, one stateless seed per rep for this step."""
        h = x
        for number, ((kind, arg), params) in enumerate(zip(self.layers, self.params)):
            if kind == "embedding":
                h = tf.gather(params[0], h, batch_dims=1)  # (R, B, 2, dim) -> flattened as Keras does
                h = tf.reshape(h, (self.reps, -1, 2 * arg))
            elif kind == "dense":
                kernel, bias = params
                h = tf.matmul(h, kernel) + bias[:, None, :]
                if arg[1] == "relu":
                    h = tf.nn.relu(h)
            elif kind == "bn":
                h = batch_norm(h, *params, training)
            elif kind == "relu":
                h = tf.nn.relu(h)
            elif training and arg > 0:
                h = h * dropout_mask(tf.shape(h)[1:], arg, dropout_seeds + [0, number])
        return h


def batch_norm(h, gamma, beta, moving_mean, moving_variance, training):
    """Keras' BatchNormalization per rep: batch statistics (and moving-average updates) in training."""
    if training:
        mean, variance = tf.nn.moments(h, axes=[1])
        moving_mean.assign(moving_mean * BN_MOMENTUM + mean * (1 - BN_MOMENTUM))
        moving_variance.assign(moving_variance * BN_MOMENTUM + variance * (1 - BN_MOMENTUM))
    else:
        mean, variance = moving_mean, moving_variance
    scale = gamma * tf.math.rsqrt(variance + BN_EPSILON)
    return h * scale[:, None, :] + (beta - mean * scale)[:, None, :]


def dropout_mask(shape, rate, seeds):
    """Keras' dropout (keep where uniform >= rate, scale by 1 / (1 - rate)), each rep from its own seed."""
    uniform = tf.map_fn(lambda seed: tf.random.stateless_uniform(shape, seed), seeds,
                        fn_output_signature=tf.float32)  # one small loop in the graph, not one op per rep
    return tf.cast(uniform >= rate, tf.float32) * (1 / (1 - rate))
