"""Load a ModelSpec once and turn image bytes into a Prediction. The model runs on an engine (worker.ml.engines:
LiteRT, or Keras on TensorFlow or JAX), which alone imports its framework."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar, cast

import numpy as np
import threadpoolctl

from worker.ml import engines, overlay, preprocessing, refusals, working
from worker.ml.cams import scaled
from worker.ml.gate import Gate
from worker.ml.operating_point import OperatingPoint
from worker.ml.polarity import Polarity
from worker.ml.prediction import Judged, Prediction, Prepared
from worker.ml.spec import ModelSpec

T = TypeVar("T")
R = TypeVar("R")
E = TypeVar("E", bound=Exception)


class Predictor:
    """Holds the engine that runs the model and its Grad-CAM (worker.ml.engines), the gate and the polarity detector.

    Numpy's BLAS is limited to one thread in a process that holds a Predictor: the model's framework owns the
    cores, and BLAS threads spinning beside it made the gate's small matrix product take 20 ms a batch instead
    of 0.3 ms, and slowed every batch by a third (measured on 2 cores).

    Never mutates the model. The heatmap rule: a PNEUMONIA call shows where the evidence for pneumonia lies,
    on the card's absolute scale; a NORMAL call shows no map (the model found no focal evidence).
    """

    def __init__(
        self,
        spec: ModelSpec,
        batch: int = 64,
        threads: int = 1,
        *,
        runtime: str = "tensorflow",
        model_threads: int | None = None,
    ) -> None:
        """batch: the most images one compiled pass takes (the worker's INFERENCE_BATCH_SIZE); larger batches run
        in passes of this size, and every shape up to it is compiled here, not on the first studies.

        threads: how many threads decode the images and render the heatmaps and overlays of a batch (the
        worker's INFERENCE_THREADS). Pillow and OpenCV release the GIL for their pixel work, so on a GPU worker,
        where the model is nearly free, this raises images/s (README: measured on an H100); on a CPU worker the
        model's framework owns the cores, and 1 (no pool) is right.

        runtime: the engine that runs the model (worker.ml.engines.RUNTIMES; the worker's INFERENCE_RUNTIME);
        model_threads: the cores LiteRT may use (None: all this process may run on)."""
        self.spec = spec
        self.batch = batch
        self._threads = threads
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="predictor") if threads > 1 else None
        threadpoolctl.threadpool_limits(1, user_api="blas")
        # The engine: logits, raw Grad-CAM maps and pooled features of a batch (named for what it computes last).
        self.gradcam: engines.Engine = engines.load(spec, runtime, model_threads)
        self.runtime = self.gradcam.runtime
        self.gate = Gate.load(spec.verified_path(spec.gate.file, spec.gate.sha256)) if spec.gate else None
        self.polarity = (
            Polarity.load(spec.verified_path(spec.polarity.file, spec.polarity.sha256)) if spec.polarity else None
        )
        self.gradcam.warm_up(batch)

    def batch_outputs(self, images: np.ndarray, batch: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """images: (n, S, S) uint8 -> (logits (n,), features (n, d)), for evaluation: no maps where the engine can
        leave them out."""
        return self.gradcam.outputs(images, batch)

    def shown_cam(self, cam: np.ndarray, label: str) -> np.ndarray:
        """The heatmap rule: raw cam -> the map drawn, (h, w) in [0, 1]; all zero for a NORMAL call."""
        if label != self.spec.labels[1]:
            return np.zeros_like(cam)
        return scaled(cam, self.spec.cam_scale)

    def predict(self, data: bytes, max_pixels: int = preprocessing.DEFAULT_MAX_PIXELS) -> Prediction:
        """Raises preprocessing.ImageRejected for unusable, inverted or non-radiograph input."""
        outcome = self.predict_batch([data], max_pixels)[0]
        if isinstance(outcome, preprocessing.ImageRejected):
            raise outcome
        return outcome

    def predict_batch(
        self, datas: list[bytes], max_pixels: int = preprocessing.DEFAULT_MAX_PIXELS
    ) -> list[Prediction | preprocessing.ImageRejected]:
        """Image bytes -> one Prediction or ImageRejected (with its reason) per image, in order: judge_batch, then
        draw. A bad image is refused alone and never fails the others."""
        return self.draw(self.judge_batch(datas, max_pixels))

    def judge_batch(
        self, datas: list[bytes], max_pixels: int = preprocessing.DEFAULT_MAX_PIXELS
    ) -> list[Judged | preprocessing.ImageRejected]:
        """Image bytes -> a Judged (heatmap and overlay not drawn yet) or an ImageRejected per image, in order:
        prepare_batch, then judge_prepared."""
        prepared: list[Prepared | Exception] = list(self.prepare_batch(datas, max_pixels))
        return cast(list[Judged | preprocessing.ImageRejected], self.judge_prepared(prepared))

    def prepare_batch(
        self, datas: list[bytes], max_pixels: int = preprocessing.DEFAULT_MAX_PIXELS
    ) -> list[Prepared | preprocessing.ImageRejected]:
        """Decode each image into its model input and its radiograph at display size (the full decode is not kept),
        or refuse it. No model: a worker prepares the next batch while the model judges this one."""
        return self.map(lambda data: self._prepare(data, max_pixels), datas)

    def _prepare(self, data: bytes, max_pixels: int) -> Prepared | preprocessing.ImageRejected:
        start = time.perf_counter()
        try:
            decoded = preprocessing.decode(data, max_pixels)
        except preprocessing.ImageRejected as exc:
            return exc
        return Prepared(
            model_input=preprocessing.model_input(decoded.gray, self.spec.input_size),
            display=preprocessing.display_image(decoded.gray),
            chroma=decoded.chroma,
            prepare_ms=(time.perf_counter() - start) * 1000,
        )

    def prepare_copies(self, copies: Sequence[working.WorkingCopy]) -> list[Prepared | None]:
        """Each image's working copy (made where it was first decoded: worker.ml.working) made ready for the model,
        as prepare_batch does from the original, to the same model input; None where the copy cannot serve, whose
        original is then prepared instead."""
        return self.map(self._prepare_copy, copies)

    def _prepare_copy(self, copy: working.WorkingCopy) -> Prepared | None:
        start = time.perf_counter()
        read = working.read(copy, self.spec.input_size)
        if read is None:
            return None
        gray, preview = read
        return Prepared(
            model_input=preprocessing.model_input(gray, self.spec.input_size),
            display=preview,
            chroma=copy.chroma,
            prepare_ms=(time.perf_counter() - start) * 1000,
        )

    def judge_prepared(
        self, prepared: Sequence[Prepared | Exception], points: Sequence[OperatingPoint | None] | None = None
    ) -> list[Judged | Exception]:
        """One compiled forward + Grad-CAM pass for the prepared images of the batch, then polarity and gate: a
        Judged or an ImageRejected for each; anything else in the list (a refusal) is passed on as it is. points:
        each image's operating point (a site's own), None for the card's."""
        start = time.perf_counter()
        outcomes: list[Judged | Exception | None] = [p if isinstance(p, Exception) else None for p in prepared]
        live = [i for i, p in enumerate(prepared) if isinstance(p, Prepared)]
        if not live:
            return [o for o in outcomes if o is not None]
        ready = [cast(Prepared, prepared[i]) for i in live]
        images = np.stack([p.model_input for p in ready])
        logits, cams, features = self.gradcam.batch(images, self.batch)
        card = self.spec.operating_point()
        chosen = [(points[i] if points is not None else None) or card for i in live]
        refusals = self._refusals(images, features, np.array([p.chroma for p in ready]))
        share_ms = (time.perf_counter() - start) * 1000 / len(prepared)
        for k, (i, p, reason, point) in enumerate(zip(live, ready, refusals, chosen, strict=True)):
            probability = point.probability(float(logits[k]))
            label = self.spec.labels[int(probability >= point.threshold)]
            outcomes[i] = (
                preprocessing.ImageRejected(reason)
                if reason
                else Judged(
                    label=label,
                    probability=probability,
                    cam=self.shown_cam(cams[k], label),
                    display=p.display,
                    judge_ms=p.prepare_ms + share_ms,
                    logit=float(logits[k]),
                    threshold=point.threshold,
                )
            )
        return [o for o in outcomes if o is not None]  # every image is refused or judged: none is left out

    def draw(self, judged: Sequence[Judged | E]) -> list[Prediction | E]:
        """Render each Judged's heatmap PNG and overlay JPEG: its Prediction. inference_ms is the image's share of
        the judging pass plus its share of this drawing's wall time."""
        start = time.perf_counter()
        drawn = self.map(_render, [j for j in judged if isinstance(j, Judged)])
        share_ms = (time.perf_counter() - start) * 1000 / max(1, len(judged))
        images = iter(drawn)
        done: list[Prediction | E] = []
        for j in judged:
            if not isinstance(j, Judged):
                done.append(j)
                continue
            heatmap_png, overlay_jpeg = next(images)
            done.append(
                Prediction(
                    label=j.label,
                    probability=j.probability,
                    threshold=j.threshold,
                    model_version=self.spec.version,
                    heatmap_png=heatmap_png,
                    overlay_jpeg=overlay_jpeg,
                    inference_ms=round(j.judge_ms + share_ms),
                    logit=j.logit,
                    runtime=self.runtime,
                )
            )
        return done

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """fn over items, in order: on the pool where there is one, each thread taking every k-th item (one task a
        thread, not one an item: a 224-pixel image's work is about 0.1 ms, as long as handing it to the pool)."""
        todo = list(items)
        if self._pool is None or len(todo) < 2:
            return [fn(x) for x in todo]
        k = min(self._threads, len(todo))
        done: list[R] = [cast(R, None)] * len(todo)
        for i, results in enumerate(self._pool.map(lambda i: [fn(x) for x in todo[i::k]], range(k))):
            done[i::k] = results
        return done

    def _refusals(self, images: np.ndarray, features: np.ndarray, chroma: np.ndarray) -> list[str | None]:
        """Why each image is refused (None: judged), the whole batch at once: not a chest X-ray first, then inverted
        (worker.ml.refusals; an image the polarity detector flags is inverted and its features taken again)."""
        return refusals.reasons(
            images,
            features,
            chroma,
            gate=self.gate,
            polarity=self.polarity,
            features_of=lambda flipped: self.gradcam.batch(flipped, self.batch)[2],
        )


def _render(judged: Judged) -> tuple[bytes, bytes]:
    """(heatmap PNG, overlay JPEG): on the decoded radiograph, or on a working copy's preview (decoded only if a
    map is drawn on it)."""
    if isinstance(judged.display, working.Preview):
        return judged.display.render(judged.cam)
    return overlay.render(judged.display, judged.cam)
