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


class RepEmbedding(keras.layers.Layer):
    """Embedding + Flatten with a rep axis: (R, B, 2) ints -> (R, B, 2 * dim)."""

    def __init__(self, reps, vocab_size, dim):
        super().__init__()
        self.dim = dim
        self.embeddings = self.add_weight(shape=(reps, vocab_size, dim), initializer="zeros")

    def call(self, x):
        h = tf.gather(self.embeddings, x, batch_dims=1)
        return tf.reshape(h, (tf.shape(h)[0], tf.shape(h)[1], 2 * self.dim))


class RepDense(keras.layers.Layer):
    """Dense with a rep axis: one (in, out) kernel and bias per rep."""

    def __init__(self, reps, fan_in, units, activation=None):
        super().__init__()
        self.activation = keras.activations.get(activation)
        self.kernel = self.add_weight(shape=(reps, fan_in, units), initializer="zeros")
        self.bias = self.add_weight(shape=(reps, units), initializer="zeros")

    def call(self, x):
        return self.activation(tf.matmul(x, self.kernel) + self.bias[:, None, :])


class RepBatchNorm(keras.layers.Layer):
    """BatchNormalization with Keras defaults, statistics per rep over the batch axis."""

    momentum, epsilon = 0.99, 1e-3

    def __init__(self, reps, features):
        super().__init__()
        shape = (reps, features)
        self.gamma = self.add_weight(shape=shape, initializer="ones")
        self.beta = self.add_weight(shape=shape, initializer="zeros")
        self.moving_mean = self.add_weight(shape=shape, initializer="zeros", trainable=False)
        self.moving_variance = self.add_weight(shape=shape, initializer="ones", trainable=False)

    def call(self, x, training=False):
        if training:
            mean, variance = tf.nn.moments(x, axes=[1])
            self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1 - self.momentum))
            self.moving_variance.assign(
                self.moving_variance * self.momentum + variance * (1 - self.momentum))
        else:
            mean, variance = self.moving_mean, self.moving_variance
        scale = self.gamma * tf.math.rsqrt(variance + self.epsilon)
        return x * scale[:, None, :] + (self.beta - mean * scale)[:, None, :]


class RepStack(keras.Model):
    """All reps of one entry as one model: labels (R, B, 2) -> (R, B, n_dim)."""

    def __init__(self, entry, vocab_size, reps, dropout_seed):
        super().__init__()
        self.stack = [RepEmbedding(reps, vocab_size, entry["emb_out"])]
        width = 2 * entry["emb_out"]
        for kind, arg in hidden_layers(entry):
            if kind == "dense":
                self.stack.append(RepDense(reps, width, arg[0], arg[1]))
                width = arg[0]
            elif kind == "bn":
                self.stack.append(RepBatchNorm(reps, width))
            elif kind == "relu":
                self.stack.append(keras.layers.ReLU())
            else:
                self.stack.append(keras.layers.Dropout(arg, seed=dropout_seed + len(self.stack)))
        self.stack.append(RepDense(reps, width, entry["n_dim"]))

    def call(self, x, training=False):
        for layer in self.stack:
            x = layer(x, training=training) if isinstance(layer, (RepBatchNorm, keras.layers.Dropout)) else layer(x)
        return x
