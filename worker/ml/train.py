"""Train ensemble members on a GPU: Keras 3 on JAX, one jitted step with the augmentation inside it.

    KERAS_BACKEND=jax python -m worker.ml.train --data DIR --weights H5 --out OUT

Decodes DIR/train/{NORMAL,PNEUMONIA} with Pillow as the serving path does (EXIF orientation, grayscale;
the files are already INPUT_SIZE square), then trains every (fold, recipe, seed) of the plan on that fold's
training part (`worker.ml.splits`) and writes OUT/<fold>_<recipe>_<seed>.weights.h5 and OUT/runs.json
with each run's logits on its fold's validation. Selection, the shift suite, calibration and packaging
run on the CPU afterwards (`python -m worker.ml.package`). The step is compiled once and reused by every
run: weights, optimiser state and the learning rate are arguments, never closed-over constants.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from worker.ml.masks import corners_mask, mask_corners
from worker.ml.probes import occlude
from worker.ml.spec import INPUT_SIZE, LABELS
from worker.ml.splits import fold

STAMP = 64  # side of a synthetic marker/text stamp, pixels
SHIFT = 20  # largest translation, pixels


@dataclass(frozen=True)
class Recipe:
    """Probabilities of the shortcut-removing augmentations (per image); the photometric ones always run."""

    corner: float  # each of the four corners (12-25 % of the side) filled with the median or a random grey
    frame: float  # an outer frame (5-15 % of the side) filled the same way
    erase: float  # one random box (20-60 px) filled with a random grey
    marker: float  # a synthetic side marker or text stamp pasted anywhere
    epochs: int
    zoom: float = 0.0  # rescaled about the centre by 0.75-1.15 (black fill when zoomed out)


RECIPES = {
    "base": Recipe(corner=0.0, frame=0.0, erase=0.0, marker=0.0, epochs=15),
    "shortcut": Recipe(corner=0.5, frame=0.25, erase=0.5, marker=0.5, epochs=15),
    "long": Recipe(corner=0.5, frame=0.25, erase=0.5, marker=0.5, epochs=25),
    "strong": Recipe(corner=0.8, frame=0.5, erase=0.5, marker=0.7, epochs=25),
    "v2": Recipe(corner=0.5, frame=0.6, erase=0.5, marker=0.7, epochs=25, zoom=0.5),
}
DEFAULT_PLAN = "A:base:2,A:shortcut:4,A:long:2,B:base:2,B:shortcut:4,B:long:2"


def load_folder(root: Path, limit: int | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """root/NORMAL, root/PNEUMONIA -> images (n, S, S) uint8, labels (n,) int32, file names."""
    from PIL import Image, ImageOps

    images, labels, names = [], [], []
    for label, cls in enumerate(LABELS):
        paths = sorted(p for p in (root / cls).iterdir() if p.suffix.lower() in {".jpeg", ".jpg", ".png"})
        for path in paths[:: max(1, len(paths) // limit)] if limit else paths:
            with Image.open(path) as img:
                gray = np.asarray(ImageOps.exif_transpose(img).convert("L"), dtype=np.uint8)
            if gray.shape != (INPUT_SIZE, INPUT_SIZE):
                raise ValueError(f"{path} is {gray.shape}; the trainer expects {INPUT_SIZE}x{INPUT_SIZE} files")
            images.append(gray)
            labels.append(label)
            names.append(path.name)
    return np.stack(images), np.array(labels, dtype=np.int32), names


def stamps(n: int, seed: int) -> np.ndarray:
    """(n, STAMP, STAMP) float32 alpha masks of side markers and text ("R", "L", "AP", digits, words)."""
    from PIL import Image, ImageDraw, ImageFont

    rng = np.random.default_rng(seed)
    words = ["R", "L", "AP", "PA", "SUPINE", "PORTABLE", "ERECT", "LT", "RT", "1", "2", "12", "A", "P"]
    out = np.zeros((n, STAMP, STAMP), np.float32)
    for i in range(n):
        canvas = Image.new("L", (STAMP, STAMP), 0)
        text = str(rng.choice(words))
        font = ImageFont.load_default(size=int(rng.integers(10, 40)))
        ImageDraw.Draw(canvas).text((int(rng.integers(0, 20)), int(rng.integers(0, 20))), text, fill=255, font=font)
        out[i] = np.asarray(canvas, np.float32) / 255.0
    return out


def augment(key: Any, x: Any, probs: Any, bank: Any) -> Any:
    """x: (b, S, S) uint8 -> (b, S, S, 1) float32 in [0, 255]. probs: (5,) corner, frame, erase, marker, zoom.

    Always ends with the serving preprocessing's corner mask (`masks.mask_corners`)."""
    import jax
    import jax.numpy as jnp

    b, s = x.shape[0], INPUT_SIZE
    k = jax.random.split(key, 16)
    u = x.astype(jnp.float32) / 255.0
    padded = jnp.pad(u, ((0, 0), (SHIFT, SHIFT), (SHIFT, SHIFT)))  # black fill, like a collimated film
    offsets = jax.random.randint(k[0], (b, 2), 0, 2 * SHIFT + 1)
    u = jax.vmap(lambda img, o: jax.lax.dynamic_slice(img, (o[0], o[1]), (s, s)))(padded, offsets)
    u = zoom(k[0], u, probs[4])

    def per_image(kk: Any, lo: float, hi: float) -> Any:
        return jax.random.uniform(kk, (b, 1, 1), minval=lo, maxval=hi)

    u = jnp.power(jnp.clip(u, 1e-6, 1.0), jnp.exp(per_image(k[1], -0.35, 0.35)))
    mean = u.mean(axis=(1, 2), keepdims=True)
    u = (u - mean) * per_image(k[2], 0.75, 1.25) + mean + per_image(k[3], -0.1, 0.1)
    u = u + jax.random.normal(k[4], u.shape) * per_image(k[5], 0.0, 0.03)

    yy, xx = jnp.meshgrid(jnp.arange(s), jnp.arange(s), indexing="ij")
    median = jnp.median(u.reshape(b, -1), axis=1)[:, None, None]
    fill = jnp.where(jax.random.bernoulli(k[6], 0.5, (b, 1, 1)), median, per_image(k[7], 0.0, 1.0))
    side = per_image(k[8], 0.12 * s, 0.25 * s)
    far = s - side
    on = jax.random.bernoulli(k[9], probs[0], (b, 4, 1, 1))
    corners = (
        (on[:, 0] & (yy < side) & (xx < side))
        | (on[:, 1] & (yy < side) & (xx >= far))
        | (on[:, 2] & (yy >= far) & (xx < side))
        | (on[:, 3] & (yy >= far) & (xx >= far))
    )
    width = per_image(k[10], 0.05 * s, 0.15 * s)
    frame = jax.random.bernoulli(k[11], probs[1], (b, 1, 1)) & (
        (yy < width) | (yy >= s - width) | (xx < width) | (xx >= s - width)
    )
    u = jnp.where(corners | frame, fill, u)

    box = jax.random.uniform(k[12], (b, 4, 1, 1))
    h, w = 20 + box[:, 0] * 40, 20 + box[:, 1] * 40
    y0, x0 = box[:, 2] * (s - h), box[:, 3] * (s - w)
    erase = jax.random.bernoulli(k[13], probs[2], (b, 1, 1)) & (yy >= y0) & (yy < y0 + h) & (xx >= x0) & (xx < x0 + w)
    u = jnp.where(erase, per_image(k[14], 0.0, 1.0), u)

    km = jax.random.split(k[15], 4)
    idx = jax.random.randint(km[0], (b,), 0, bank.shape[0])
    pos = jax.random.randint(km[1], (b, 2), 0, s - STAMP + 1)
    alpha = jax.vmap(lambda i, p: jax.lax.dynamic_update_slice(jnp.zeros((s, s)), bank[i], (p[0], p[1])))(idx, pos)
    alpha = alpha * jax.random.bernoulli(km[2], probs[3], (b, 1, 1))
    ink = jnp.where(jax.random.bernoulli(km[3], 0.8, (b, 1, 1)), 1.0, 0.0)
    u = jnp.clip(u * (1 - alpha) + ink * alpha, 0.0, 1.0)
    u = jnp.where(jnp.asarray(corners_mask(s))[None], jnp.median(u.reshape(b, -1), axis=1)[:, None, None], u)
    return (u * 255.0)[..., None]


def zoom(key: Any, u: Any, p: Any) -> Any:
    """u: (b, S, S) in [0, 1] -> each image rescaled about its centre by 0.75-1.15 with probability p."""
    import jax
    import jax.numpy as jnp
    from jax.scipy.ndimage import map_coordinates

    b, s = u.shape[0], u.shape[1]
    k1, k2 = jax.random.split(jax.random.fold_in(key, 7))
    scale = jnp.where(jax.random.bernoulli(k1, p, (b,)), jax.random.uniform(k2, (b,), minval=0.75, maxval=1.15), 1.0)
    grid = jnp.arange(s, dtype=jnp.float32) - (s - 1) / 2

    def one(img: Any, f: Any) -> Any:
        yy, xx = jnp.meshgrid(grid / f + (s - 1) / 2, grid / f + (s - 1) / 2, indexing="ij")
        return map_coordinates(img, [yy, xx], order=1, mode="constant", cval=0.0)

    return jax.vmap(one)(u, scale)


class Trainer:
    """One model, one compiled train step and one compiled forward, reused by every run."""

    def __init__(self, weights: Path, batch: int) -> None:
        import jax
        import jax.numpy as jnp
        import keras

        from worker.ml import model as arch

        self.batch = batch
        self.net = arch.build("mobilenet025", imagenet_weights=str(weights))
        self.init_tv = [jnp.array(v.value) for v in self.net.trainable_variables]
        self.init_ntv = [jnp.array(v.value) for v in self.net.non_trainable_variables]
        self.decay = [v.value.ndim > 1 for v in self.net.trainable_variables]
        net = self.net

        def loss_fn(tv: Any, ntv: Any, x: Any, y: Any, w: Any) -> Any:
            logits, ntv = net.stateless_call(tv, ntv, x, training=True)
            z = logits[:, 0]
            return jnp.mean(w * (jax.nn.softplus(z) - y * z)), ntv

        grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

        def step(state: Any, x: Any, y: Any, w: Any, *, key: Any, probs: Any, bank: Any, lr: Any, t: Any) -> Any:
            tv, ntv, m, v = state
            (loss, ntv), g = grad_fn(tv, ntv, augment(key, x, probs, bank), y, w)
            b1, b2, eps, wd = 0.9, 0.999, 1e-7, 1e-4
            m = [b1 * mi + (1 - b1) * gi for mi, gi in zip(m, g, strict=True)]
            v = [b2 * vi + (1 - b2) * gi * gi for vi, gi in zip(v, g, strict=True)]
            c1, c2 = 1 - b1**t, 1 - b2**t
            tv = [
                p - lr * ((mi / c1) / (jnp.sqrt(vi / c2) + eps) + (wd * p if decay else 0.0))
                for p, mi, vi, decay in zip(tv, m, v, self.decay, strict=True)
            ]
            return (tv, ntv, m, v), loss

        def forward(tv: Any, ntv: Any, x: Any) -> Any:
            logits, _ = net.stateless_call(tv, ntv, x.astype(jnp.float32)[..., None], training=False)
            return logits[:, 0]

        self.step = jax.jit(step, donate_argnums=(0,))
        self.forward = jax.jit(forward)
        self.keras = keras

    def fresh_state(self, seed: int) -> Any:
        """ImageNet backbone, a newly initialised head (seeded), zero optimiser moments."""
        import jax.numpy as jnp

        rng = np.random.default_rng(seed)
        tv = [jnp.array(a) for a in self.init_tv]  # copies: the step donates its state buffers
        for i, v in enumerate(self.net.trainable_variables):
            if v.path.startswith("logit/kernel"):
                limit = math.sqrt(6.0 / sum(v.shape))
                tv[i] = jnp.asarray(rng.uniform(-limit, limit, v.shape), jnp.float32)
        ntv = [
            jnp.asarray([seed, 0], v.value.dtype) if "seed_generator" in v.path else jnp.array(val)
            for v, val in zip(self.net.non_trainable_variables, self.init_ntv, strict=True)
        ]
        zeros = [jnp.zeros_like(p) for p in tv]
        return (tv, ntv, zeros, [jnp.zeros_like(p) for p in tv])

    def train(self, x: Any, y: np.ndarray, *, recipe: Recipe, seed: int, bank: Any, lr0: float) -> Any:
        import jax
        import jax.numpy as jnp

        state = self.fresh_state(seed)
        pos = float(y.mean())
        weights = jnp.asarray(np.where(y == 1, 0.5 / pos, 0.5 / (1 - pos)), jnp.float32)
        labels = jnp.asarray(y, jnp.float32)
        probs = jnp.asarray([recipe.corner, recipe.frame, recipe.erase, recipe.marker, recipe.zoom], jnp.float32)
        steps = len(y) // self.batch
        total = steps * recipe.epochs
        rng = np.random.default_rng(seed)
        key = jax.random.PRNGKey(seed)
        t = 0
        for _ in range(recipe.epochs):
            order = rng.permutation(len(y))
            for i in range(steps):
                idx = jnp.asarray(order[i * self.batch : (i + 1) * self.batch])
                key, sub = jax.random.split(key)
                lr = 0.5 * lr0 * (1 + math.cos(math.pi * t / total))
                t += 1
                state, loss = self.step(
                    state, x[idx], labels[idx], weights[idx], key=sub, probs=probs, bank=bank, lr=lr, t=t
                )
        return state, float(loss)

    def logits(self, state: Any, x: np.ndarray, chunk: int = 256) -> np.ndarray:
        tv, ntv = state[0], state[1]
        n = len(x)
        padded = np.concatenate([x, np.zeros((-n % chunk, *x.shape[1:]), x.dtype)])
        out = [np.asarray(self.forward(tv, ntv, padded[i : i + chunk])) for i in range(0, len(padded), chunk)]
        return np.concatenate(out)[:n].astype(np.float64)

    def save(self, state: Any, path: Path) -> None:
        for var, val in zip(self.net.trainable_variables, state[0], strict=True):
            var.assign(val)
        for var, val in zip(self.net.non_trainable_variables, state[1], strict=True):
            var.assign(val)
        self.net.save_weights(path)


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mann-Whitney AUC (ties count half)."""
    pos, neg = scores[labels == 1], scores[labels == 0]
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--weights", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--plan", default=DEFAULT_PLAN, help="comma-separated fold:recipe:seeds")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--limit", type=int, default=None, help="images per class (a quick CPU check)")
    p.add_argument("--epochs", type=int, default=None, help="override every recipe's epochs (a quick CPU check)")
    p.add_argument("--budget", type=float, default=480.0, help="start no new run after this many seconds")
    args = p.parse_args(argv)

    import jax.numpy as jnp

    start = time.time()
    x, y, names = load_folder(args.data / "train", args.limit)
    vx, vy, vnames = load_folder(args.data / "val")
    print(f"loaded {len(y)} train and {len(vy)} val images in {time.time() - start:.1f}s", flush=True)
    trainer = Trainer(args.weights, args.batch)
    bank = jnp.asarray(stamps(96, seed=0))
    x_dev = jnp.asarray(x)
    args.out.mkdir(parents=True, exist_ok=True)
    runs: list[dict[str, Any]] = []
    for entry in args.plan.split(","):
        fold_name, recipe_name, seeds = entry.split(":")
        split = fold(fold_name, names, y.tolist())
        recipe = RECIPES[recipe_name]
        if args.epochs:
            recipe = Recipe(**{**asdict(recipe), "epochs": args.epochs})
        for seed in range(int(seeds)):
            if time.time() - start > args.budget:
                print(f"budget reached; skipping {fold_name}:{recipe_name}:{seed}", flush=True)
                continue
            t0 = time.time()
            state, loss = trainer.train(
                x_dev[split.train], y[split.train], recipe=recipe, seed=100 + seed, bank=bank, lr0=args.lr
            )
            val_x = np.stack([mask_corners(g) for g in x[split.validation]])  # as preprocessing.model_input
            logits = trainer.logits(state, val_x)
            name = f"{fold_name}_{recipe_name}_{seed}"
            trainer.save(state, args.out / f"{name}.weights.h5")
            run = {
                "name": name,
                "fold": fold_name,
                "recipe": recipe_name,
                "seed": 100 + seed,
                **asdict(recipe),
                "seconds": round(time.time() - t0, 1),
                "final_loss": loss,
                "val_auc": auc(logits, y[split.validation]),
                "val_logits": logits.round(4).tolist(),
                "val_corner_logits": trainer.logits(state, occlude(val_x, corners_mask(INPUT_SIZE))).round(4).tolist(),
                "official_val_logits": trainer.logits(state, np.stack([mask_corners(g) for g in vx])).round(4).tolist(),
            }
            runs.append(run)
            print(f"{name}: {run['seconds']}s loss {loss:.4f} fold-val AUC {run['val_auc']:.4f}", flush=True)
            (args.out / "runs.json").write_text(json.dumps({"runs": runs, "official_val": vnames}))
    print(f"done in {time.time() - start:.1f}s", flush=True)


if __name__ == "__main__":
    main()
