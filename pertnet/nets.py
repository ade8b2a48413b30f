"""The architectures' layer lists (`architectures`) built two ways in TensorFlow.

`build_model` gives the plain Keras model of one rep, exactly as the original defined it
(parameter counts, loss, metric). `RepStack` holds the same layers with a leading rep axis
on every weight, so that all reps of an entry train as one batched computation: in training
mode, rep r of a RepStack computes exactly what the plain model with rep r's weights computes,
and the weight lists line up (`stack.get_weights()[i][r]` is `model.get_weights()[i]`).
"""
import keras
import tensorflow as tf
from tensorflow.python.ops import gen_stateless_random_ops_v2  # key and counter: a window of a stream

from pertnet.architectures import (BN_MOMENTUM, WEIGHTS_PER_LAYER, BatchNorm, Dense, Dropout, Embedding, ReLU,
                                   batch_normalize, hidden_layers, layer_widths, layers, loss_name)

AUTO_SELECT = 3  # tf.random.Algorithm.AUTO_SELECT: what tf.random.stateless_uniform uses by default


def row_rmse(y_true, y_pred):
    """Each row's RMSE over the last axis: the Keras model's loss and metric (Keras averages it over rows)."""
    return tf.sqrt(tf.reduce_mean(tf.square(y_true - y_pred), axis=-1))


def mrrmse(y_true, y_pred):
    """Mean over rows of each row's RMSE (the competition score): (..., rows, n) -> (...)."""
    return tf.reduce_mean(row_rmse(y_true, y_pred), axis=-1)


def mae(y_true, y_pred):
    """Mean absolute error over the last two axes (rows and components)."""
    return tf.reduce_mean(tf.abs(y_true - y_pred), axis=(-2, -1))


def build_model(entry, vocab_size, compile=True):
    """The plain Keras model of one rep: labels (batch, 2) -> (batch, n_dim), compiled as the original
    compiled it; compile=False: the bare network, for a .keras file that loads without this package
    (a file compiled with `row_rmse` does not)."""
    inputs = keras.Input(shape=(2,), dtype="int32")
    h = keras.layers.Flatten()(keras.layers.Embedding(vocab_size, entry.emb_out)(inputs))
    for layer in hidden_layers(entry):
        if isinstance(layer, Dense):
            h = keras.layers.Dense(layer.units, activation=layer.activation)(h)
        elif isinstance(layer, BatchNorm):
            h = keras.layers.BatchNormalization()(h)
        elif isinstance(layer, ReLU):
            h = keras.layers.ReLU()(h)
        else:
            h = keras.layers.Dropout(layer.rate)(h)
    outputs = keras.layers.Dense(entry.n_dim)(h)
    model = keras.Model(inputs, outputs, name=f"model_{entry.id}")
    if compile:
        loss = "mae" if loss_name(entry) == "mae" else row_rmse
        model.compile(optimizer=keras.optimizers.Adam(entry.lr), loss=loss, metrics=[row_rmse])
    return model


class RepStack:
    """All reps of one entry as one network, in plain TensorFlow ops: labels (R, B, 2) -> (R, B, n_dim).

    weights: the plain model's get_weights() list with a leading rep axis on every array.
    Rep r computes exactly what the plain model with weights [w[r] for w in weights] computes.
    """

    def __init__(self, entry, weights):
        self.layers = layers(entry)
        self.widths = layer_widths(entry)
        self.variables = [tf.Variable(w) for w in weights]
        self.reps = len(weights[0])
        remaining = iter(self.variables)
        self.params = [[next(remaining) for _ in range(WEIGHTS_PER_LAYER.get(type(layer), 0))] for layer in self.layers]
        self.trainable = [v for layer, params in zip(self.layers, self.params)
                          for v in (params[:2] if isinstance(layer, BatchNorm) else params)]  # BN's moving statistics are not

    def get_weights(self):
        return [v.numpy() for v in self.variables]

    def dropout_rates(self):
        """(rate, width) of every dropout layer that drops anything, in order (what `masks` must match)."""
        return [(layer.rate, width) for layer, width in zip(self.layers, self.widths)
                if isinstance(layer, Dropout) and layer.rate > 0]

    def __call__(self, x, masks):
        """The training-mode forward pass (batch statistics, dropout); `architectures.predict` infers.

        masks: one (R, B, width) scaled keep mask per `dropout_rates()` entry, in order.
        """
        h, masks = x, iter(masks)
        for layer, params in zip(self.layers, self.params):
            if isinstance(layer, Embedding):
                h = tf.gather(params[0], h, batch_dims=1)  # (R, B, 2, dim) -> flattened as Keras does
                h = tf.reshape(h, (self.reps, -1, 2 * layer.width))
            elif isinstance(layer, Dense):
                kernel, bias = params
                h = tf.matmul(h, kernel) + bias[:, None, :]
                if layer.activation == "relu":
                    h = tf.nn.relu(h)
            elif isinstance(layer, BatchNorm):
                h = batch_norm(h, *params)
            elif isinstance(layer, ReLU):
                h = tf.nn.relu(h)
            elif layer.rate > 0:
                h = h * next(masks)
        return h


def batch_norm(h, gamma, beta, moving_mean, moving_variance):
    """Keras' BatchNormalization in training, per rep: batch statistics, moving averages updated."""
    mean, variance = tf.nn.moments(h, axes=[1])
    moving_mean.assign(moving_mean * BN_MOMENTUM + mean * (1 - BN_MOMENTUM))
    moving_variance.assign(moving_variance * BN_MOMENTUM + variance * (1 - BN_MOMENTUM))
    return batch_normalize(h, gamma, beta, mean, variance)


def dropout_masks(seeds, rows, width, rate, first=0):
    """Keras' dropout masks (keep with probability 1 - rate, scaled by 1 / (1 - rate)) for `rows` rows
    of a layer of `width` units, each rep's from its own stateless seed: (R, rows, width).

    A rep's masks for an epoch are one stream of 16-bit uniforms (half the random bits of float32 ones,
    for a keep probability within 2**-16 of 1 - rate) drawn from its seed; `first` starts the window at
    that row of the stream (rows and first may be tensors). The masks of a window are the same values
    whether the epoch's are drawn at once or window by window (Philox is a counter: the window starts it
    further on), so an epoch too large to hold its masks at once draws them by chunks of batches.
    """
    halves_from = tf.cast(first, tf.int64) * width  # the window's first value in the rep's stream
    block = halves_from // 8  # Philox gives 4 words (8 halves) per counter step
    skipped = halves_from - 8 * block
    count = tf.cast(rows, tf.int64) * width
    words_needed = (skipped + count + 1) // 2
    streams = []
    for seed in tf.unstack(seeds):
        key, counter = gen_stateless_random_ops_v2.stateless_random_get_key_counter(seed)
        low = counter[0] + tf.cast(block, tf.uint64)
        counter = tf.stack([low, counter[1] + tf.cast(low < counter[0], tf.uint64)])  # a 128-bit add
        words = gen_stateless_random_ops_v2.stateless_random_uniform_full_int_v2(
            tf.reshape(words_needed, [1]), key, counter, alg=AUTO_SELECT, dtype=tf.uint32)
        streams.append(tf.reshape(tf.bitcast(words, tf.uint16), [-1])[skipped:skipped + count])
    keep = tf.stack(streams) >= tf.constant(round(rate * 2 ** 16), tf.uint16)
    return tf.reshape(tf.cast(keep, tf.float32) * (1 / (1 - rate)), (len(streams), -1, width))
