"""Training one entry's reps (docs/method.md, sections 2 and 4), all reps at once.

Every rep is an independent model: its own initialisation and its own shuffling, both from its
own seed, and its own dropout masks. The reps of an entry are trained side by side as one
`RepStack` (a rep axis on every weight) inside one compiled step: the loss is the sum of the
reps' losses, so each rep's gradient, and therefore its Adam update, is exactly the one it
would get alone. This does the work of `reps` Keras `fit` calls in one pass. The step is plain
TensorFlow ops (no Keras layers, Adam as the fused kernel) in one compiled loop per epoch, with
static batch shapes: tracing and per-op overhead, not just FLOPs, decide the speed at these sizes.
"""
import hashlib
import time

import numpy as np
import tensorflow as tf

from pertnet import architectures, memory, nets, stopping

tf.get_logger().setLevel("ERROR")  # each entry traces its own loop, by design: no "retracing" warnings


def derive_seed(*parts):
    """A 31-bit seed from any parts (base seed, stage, entry id, purpose, rep): stable everywhere."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def rep_seeds(seed, stage, entry_id, reps):
    return [derive_seed(seed, stage, entry_id, "rep", rep) for rep in range(reps)]


def initial_weights(entry, vocab_size, seeds):
    """Each rep's initial weights, from its own seed, stacked on a rep axis.

    Keras' default initializers, drawn with NumPy: Glorot-uniform kernels, uniform(-0.05, 0.05)
    embeddings, zero biases, BatchNormalization's ones and zeros. (Building the Keras model per
    rep to draw them took seconds per entry.)
    """
    per_rep = []
    for seed in seeds:
        rng = np.random.default_rng(derive_seed(seed, "init"))
        per_rep.append([_draw(rng, shape, initializer) for shape, initializer in architectures.weight_specs(entry, vocab_size)])
    return [np.stack(ws) for ws in zip(*per_rep)]


def _draw(rng, shape, initializer):
    if initializer == "glorot_uniform":
        limit = np.sqrt(6 / sum(shape))
        return rng.uniform(-limit, limit, shape).astype(np.float32)
    if initializer == "uniform":
        return rng.uniform(-0.05, 0.05, shape).astype(np.float32)
    return np.full(shape, 1.0 if initializer == "ones" else 0.0, np.float32)


def dense_weights(entry):
    """Number of Dense kernel weights of an entry's network (what the FLOP count multiplies)."""
    widths = architectures.dense_widths(entry)
    return sum(a * b for a, b in zip(widths, widths[1:]))


def training_flops(entry, rows):
    """Forward + backward matmul work of training an entry: 6 x dense weights x rows x epochs x reps."""
    return 6 * dense_weights(entry) * rows * entry.epochs * entry.reps


class Adam:
    """Keras' Adam (defaults beta_1 0.9, beta_2 0.999, epsilon 1e-7) as one fused kernel per variable."""

    beta_1, beta_2, epsilon = 0.9, 0.999, 1e-7

    def __init__(self, learning_rate, variables):
        self.learning_rate = learning_rate
        self.variables = variables
        self.moments = [(tf.Variable(tf.zeros_like(v)), tf.Variable(tf.zeros_like(v))) for v in variables]
        self.iterations = tf.Variable(0.0)

    def apply(self, gradients):
        self.iterations.assign_add(1.0)
        beta_1_power, beta_2_power = self.beta_1 ** self.iterations, self.beta_2 ** self.iterations
        constants = [tf.constant(c, tf.float32) for c in (self.learning_rate, self.beta_1, self.beta_2, self.epsilon)]
        for variable, (m, v), gradient in zip(self.variables, self.moments, gradients):
            tf.raw_ops.ResourceApplyAdam(var=variable.handle, m=m.handle, v=v.handle, beta1_power=beta_1_power,
                                         beta2_power=beta_2_power, lr=constants[0], beta1=constants[1],
                                         beta2=constants[2], epsilon=constants[3],
                                         grad=tf.convert_to_tensor(gradient))  # the embedding's sparse gradient, summed per row


def train_entry(entry, inputs, targets, vocab_size, seeds, on_epoch=None):
    """Train len(seeds) reps of `entry` on (inputs, targets); return each rep's weight list.

    inputs: (rows, 2) int32 label codes; targets: (rows, n_dim) SVD components; or, to train
    different data side by side (cross-validation folds with as many rows), (reps, rows, 2) and
    (reps, rows, n_dim): each rep its own rows.
    on_epoch(epoch, losses): called after every epoch with each rep's mean batch loss.
    A rep's initialisation, shuffles and dropout masks all come from its own seed, so what a
    rep learns does not depend on which other reps train beside it.
    """
    reps, rows, batch_size = len(seeds), np.shape(inputs)[-2], entry.bs
    stack = nets.RepStack(entry, initial_weights(entry, vocab_size, seeds))
    optimizer = Adam(entry.lr, stack.trainable)
    loss_fn = nets.mae if architectures.loss_name(entry) == "mae" else nets.mrrmse
    x, z = tf.constant(inputs, tf.int32), tf.constant(targets, tf.float32)
    own_rows = int(np.ndim(inputs) == 3)  # gather each rep's batch from its own rows

    def take(values, batch):  # batch: (reps, b) row indices -> (reps, b, ...)
        return tf.gather(values, batch, batch_dims=own_rows)

    rep_seeds = tf.constant(seeds, tf.int64)
    full_batches, last_batch = divmod(rows, batch_size)  # the last, smaller batch included, as Keras fit does
    steps_per_epoch = full_batches + (last_batch > 0)

    def step(batch, masks):  # batch: (reps, b) row indices, each rep its own; masks: this step's dropout masks
        with tf.GradientTape() as tape:
            losses = loss_fn(take(z, batch), stack(take(x, batch), masks))
            total = tf.reduce_sum(losses)
        optimizer.apply(tape.gradient(total, stack.trainable))
        return losses

    def per_batch(values):  # (reps, rows, ...) in epoch order -> (reps, full batches, batch size, ...), the rest
        split = full_batches * batch_size
        return tf.reshape(values[:, :split], (reps, full_batches, batch_size, -1)), values[:, split:]

    rates = stack.dropout_rates()
    # the epoch's dropout masks are drawn by chunks of batches that stay within memory.MASK_CHUNK_BYTES (at the
    # competition's size, the whole epoch at once): the same values either way (nets.dropout_masks)
    batch_bytes = 4 * reps * batch_size * max(1, sum(width for _, width in rates))
    chunk_batches = max(1, min(full_batches, memory.MASK_CHUNK_BYTES // batch_bytes))
    chunks = -(-full_batches // chunk_batches)

    @tf.function(autograph=False)  # plain while loops: converting the Python code took seconds
    def epoch(order, number):  # order: (reps, rows), one permutation per rep; static batch shapes
        layer_seeds = [tf.stack([rep_seeds, tf.fill([reps], number * 1000 + layer)], 1) for layer in range(len(rates))]

        def masks(first_row, count):  # row i masks the epoch's i-th sample
            return [nets.dropout_masks(seeds, count, width, rate, first_row)
                    for seeds, (rate, width) in zip(layer_seeds, rates)]

        batches, rest = per_batch(order[..., None])

        def chunk(number, losses):
            first = number * chunk_batches
            count = tf.minimum(tf.constant(chunk_batches, tf.int64), full_batches - first)
            drawn = [tf.reshape(m, (reps, -1, batch_size, m.shape[-1])) for m in masks(first * batch_size, count * batch_size)]

            def full_batch(i, losses):
                return i + 1, losses + step(tf.gather(batches, first + i, axis=1)[..., 0], [tf.gather(m, i, axis=1) for m in drawn])

            return number + 1, tf.while_loop(lambda i, _: i < count, full_batch, (tf.constant(0, tf.int64), losses))[1]

        _, losses = tf.while_loop(lambda number, _: number < chunks, chunk, (tf.constant(0, tf.int64), tf.zeros(reps)))
        if last_batch:
            losses += step(rest[..., 0], masks(full_batches * batch_size, last_batch))
        return losses / steps_per_epoch

    shufflers = [np.random.default_rng(seed) for seed in seeds]
    for number in range(entry.epochs):
        order = np.stack([rng.permutation(rows) for rng in shufflers]).astype(np.int32)
        losses = epoch(tf.constant(order), tf.constant(number, tf.int64))
        if on_epoch is not None:
            on_epoch(number, losses.numpy())
        stopping.check()  # a stop signal ends the entry here, at the end of an epoch
    weights = stack.get_weights()
    return [[w[rep] for w in weights] for rep in range(reps)]


class Progress:
    """Prints which entry is training, its epochs, and the time left (from the FLOPs still to do)."""

    def __init__(self, stage, total_flops, log=print):
        self.stage, self.total, self.done, self.log = stage, total_flops, 0.0, log
        self.start = time.perf_counter()

    def eta(self, extra_done=0.0):
        done = self.done + extra_done
        elapsed = time.perf_counter() - self.start
        return "?" if done == 0 else f"{elapsed / done * (self.total - done):.0f}s"

    def epoch_callback(self, label, entry, flops):
        every = max(1, entry.epochs // 5)

        def on_epoch(epoch, losses):
            if (epoch + 1) % every == 0 or epoch + 1 == entry.epochs:
                fraction = (epoch + 1) / entry.epochs
                self.log(f"  {label} epoch {epoch + 1}/{entry.epochs} "
                         f"loss {np.mean(losses):.4f} (reps {np.min(losses):.4f}-{np.max(losses):.4f}), "
                         f"about {self.eta(fraction * flops)} left")
        return on_epoch
