"""BYOL's loss and target-decay schedule transcribed from DeepMind's JAX code into NumPy.

Sources, Apache-2.0 licence,
google-deepmind/deepmind-research@f5de0ede:
- ``l2_normalize`` and ``regression_loss``: byol/utils/helpers.py (L74–L82, L109–L112).
- ``byol_deepmind``: the representation-loss lines of byol/byol_experiment.py,
  ByolExperiment.loss_fn (L243–L250): v1→v2 plus v2→v1, then the mean over the batch.
- ``target_ema`` and ``_cosine_decay``: byol/utils/schedules.py (L20–L24, L46–L53).
Differences: jnp → np; ``jax.lax.rsqrt(x)`` → ``1/np.sqrt(x)``; ``jax.lax.stop_gradient`` is
dropped (NumPy has no gradients); the classification loss is not part of BYOL's objective.
"""

import numpy as np


def l2_normalize(x, axis=None, epsilon=1e-12):
    square_sum = np.sum(np.square(x), axis=axis, keepdims=True)
    x_inv_norm = 1.0 / np.sqrt(np.maximum(square_sum, epsilon))
    return x * x_inv_norm


def regression_loss(x, y):
    normed_x, normed_y = l2_normalize(x, axis=-1), l2_normalize(y, axis=-1)
    return np.sum((normed_x - normed_y) ** 2, axis=-1)


def byol_deepmind(prediction_view1, prediction_view2, projection_view1, projection_view2):
    """Arguments: online predictions and target projections of views 1 and 2, (N, D) each."""
    repr_loss = regression_loss(prediction_view1, projection_view2)
    repr_loss = repr_loss + regression_loss(prediction_view2, projection_view1)
    repr_loss = np.mean(repr_loss)
    return float(repr_loss)


def _cosine_decay(global_step, max_steps, initial_value):
    global_step = np.minimum(global_step, max_steps)
    cosine_decay_value = 0.5 * (1 + np.cos(np.pi * global_step / max_steps))
    decayed_learning_rate = initial_value * cosine_decay_value
    return decayed_learning_rate


def target_ema(global_step, base_ema, max_steps):
    decay = _cosine_decay(global_step, max_steps, 1.0)
    return 1.0 - (1.0 - base_ema) * decay
