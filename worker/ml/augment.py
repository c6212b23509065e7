"""Training-time augmentation for radiographs, as tf.data-friendly functions.

Applied after the serving preprocessing: geometry (rotation, zoom in and out, shift, black fill like a
collimated film), then intensity (gamma, contrast, brightness, sensor noise). No flips: anatomy is not symmetric.
"""

from __future__ import annotations

import keras
import tensorflow as tf


def geometry(seed: int) -> keras.Sequential:
    return keras.Sequential(
        [
            keras.layers.RandomRotation(0.04, fill_mode="constant", seed=seed),
            keras.layers.RandomZoom((-0.25, 0.12), fill_mode="constant", seed=seed + 1),
            keras.layers.RandomTranslation(0.06, 0.06, fill_mode="constant", seed=seed + 2),
        ],
        name="geometry",
    )


def intensity(x: tf.Tensor) -> tf.Tensor:
    """x: (b, h, w, 1) float32 in [0, 255] -> same shape and range, per-image random photometric shift."""
    b = tf.shape(x)[0]
    u = x / 255.0
    gamma = tf.exp(tf.random.uniform([b, 1, 1, 1], -0.45, 0.45))
    u = tf.pow(tf.clip_by_value(u, 1e-6, 1.0), gamma)
    mean = tf.reduce_mean(u, axis=[1, 2, 3], keepdims=True)
    u = (u - mean) * tf.random.uniform([b, 1, 1, 1], 0.65, 1.35) + mean
    u = u + tf.random.uniform([b, 1, 1, 1], -0.1, 0.1)
    u = u + tf.random.normal(tf.shape(u)) * tf.random.uniform([b, 1, 1, 1], 0.0, 0.03)
    return tf.clip_by_value(u, 0.0, 1.0) * 255.0


def pipeline(images: tf.Tensor, labels: tf.Tensor, batch: int, seed: int) -> tf.data.Dataset:
    """images: (n, 224, 224) uint8; labels: (n,) float32. Shuffled, augmented, batched (b, 224, 224, 1)."""
    geo = geometry(seed)

    def aug(x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        x = tf.cast(x, tf.float32)[..., None]
        return intensity(geo(x, training=True)), y

    ds = tf.data.Dataset.from_tensor_slices((images, labels))
    ds = ds.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True).batch(batch)
    return ds.map(aug, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
