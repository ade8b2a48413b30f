"""Training one entry's reps (SPEC.md sections 2 and 4), all reps at once.

Every rep is an independent model: its own initialisation and its own shuffling, both from its
own seed, and its own dropout masks. The reps of an entry are trained side by side as one
`RepStack` (a rep axis on every weight) inside one compiled step: the loss is the sum of the
reps' losses, so each rep's gradient, and therefore its Adam update, is exactly the one it
would get alone. This does the work of `reps` Keras `fit` calls in one pass.
"""
import hashlib
import time

import keras
import numpy as np
import tensorflow as tf

from pertnet import nets


def derive_seed(*parts):
    """A 31-bit seed from any parts (base seed, stage, entry id, purpose, rep): stable everywhere."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def rep_seeds(seed, stage, entry_id, reps):
    return [derive_seed(seed, stage, entry_id, "rep", rep) for rep in range(reps)]


def initial_weights(entry, vocab_size, seeds):
    """Keras-default initial weights of each rep, each from its own seed, stacked on a rep axis."""
    per_rep = []
    for seed in seeds:
        keras.utils.set_random_seed(seed)
        per_rep.append(nets.build_model(entry, vocab_size).get_weights())
    return [np.stack(ws) for ws in zip(*per_rep)]


def dense_weights(entry):
    """Number of Dense kernel weights of an entry's network (what the FLOP count multiplies)."""
    widths = [2 * entry["emb_out"]] + [arg[0] for kind, arg in nets.hidden_layers(entry) if kind == "dense"]
    widths.append(entry["n_dim"])
    return sum(a * b for a, b in zip(widths, widths[1:]))


def training_flops(entry, rows):
    """Forward + backward matmul work of training an entry: 6 x dense weights x rows x epochs x reps."""
    return 6 * dense_weights(entry) * rows * entry["epochs"] * entry["reps"]


def train_entry(entry, inputs, targets, vocab_size, seeds, dropout_seed, on_epoch=None):
    """Train len(seeds) reps of `entry` on (inputs, targets); return each rep's weight list.

    inputs: (rows, 2) int32 label codes; targets: (rows, n_dim) SVD components.
    on_epoch(epoch, losses): called after every epoch with each rep's mean batch loss.
    """
    reps, rows, batch_size = len(seeds), len(inputs), entry["bs"]
    stack = nets.RepStack(entry, vocab_size, reps, dropout_seed)
    stack(np.zeros((reps, 1, 2), np.int32))
    stack.set_weights(initial_weights(entry, vocab_size, seeds))
    optimizer = keras.optimizers.Adam(entry["lr"])
    optimizer.build(stack.trainable_variables)
    loss_fn = nets.mae if nets.loss_name(entry) == "mae" else nets.mrrmse
    x, z = tf.constant(inputs, tf.int32), tf.constant(targets, tf.float32)

    def step(batch):  # batch: (reps, b) row indices, each rep its own
        with tf.GradientTape() as tape:
            losses = loss_fn(tf.gather(z, batch), stack(tf.gather(x, batch), training=True))
            total = tf.reduce_sum(losses)
        gradients = tape.gradient(total, stack.trainable_variables)
        optimizer.apply_gradients(zip(gradients, stack.trainable_variables))
        return losses

    batches = -(-rows // batch_size)  # the last, smaller batch included, as Keras fit does

    @tf.function
    def epoch(order):  # order: (reps, rows), one permutation per rep
        losses = tf.zeros(reps)
        for start in tf.range(0, rows, batch_size):
            losses += step(order[:, start:tf.minimum(start + batch_size, rows)])
        return losses / batches

    shufflers = [np.random.default_rng(seed) for seed in seeds]
    for number in range(entry["epochs"]):
        order = np.stack([rng.permutation(rows) for rng in shufflers]).astype(np.int32)
        losses = epoch(tf.constant(order))
        if on_epoch is not None:
            on_epoch(number, losses.numpy())
    weights = stack.get_weights()
    return [[w[rep] for w in weights] for rep in range(reps)]


def predict_reps(entry, rep_weights, vocab_size, inputs):
    """Each rep's prediction of the components: (reps, rows, n_dim)."""
    reps = len(rep_weights)
    stack = nets.RepStack(entry, vocab_size, reps, dropout_seed=0)
    stack(np.zeros((reps, 1, 2), np.int32))
    stack.set_weights([np.stack(ws) for ws in zip(*rep_weights)])
    batch = np.broadcast_to(np.asarray(inputs, np.int32), (reps, *np.shape(inputs)))
    return stack(tf.constant(batch), training=False).numpy()


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
        every = max(1, entry["epochs"] // 5)

        def on_epoch(epoch, losses):
            if (epoch + 1) % every == 0 or epoch + 1 == entry["epochs"]:
                fraction = (epoch + 1) / entry["epochs"]
                self.log(f"  {label} epoch {epoch + 1}/{entry['epochs']} "
                         f"loss {np.mean(losses):.4f} (reps {np.min(losses):.4f}-{np.max(losses):.4f}), "
                         f"about {self.eta(fraction * flops)} left")
        return on_epoch
