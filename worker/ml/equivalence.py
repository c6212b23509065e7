"""Whether two Predictors (two engines of one model) give the same answers: the check a runtime must pass before it
serves (issue 31), recorded in the model card by the packaging step and asserted by the tests.

Same answers: calibrated probabilities within 1e-3, the same labels, the same refusals (the clinician's sentence
of each: not a chest X-ray, inverted, colour; the figures after it may differ in their last digits), and Grad-CAM
maps that correlate at 0.99 or more image by image (a ReLU6 network's gradient moves in steps where a pre-activation
sits on 0 or 6, so two runtimes that round differently can differ by more than rounding somewhere on a map); the
largest difference of the maps is stated on the drawn scale (raw / the card's cam_scale: 1 is full strength).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from worker.ml import data
from worker.ml.gate import DETAIL
from worker.ml.prediction import Judged, Prepared

if TYPE_CHECKING:
    from worker.ml.inference import Predictor

MAX_PROBABILITY_DIFFERENCE = 1e-3
MIN_CAM_CORRELATION = 0.99
TRAINING_IMAGES = 200  # spread evenly over the training folder's sorted list, both classes


@dataclass(frozen=True)
class Equivalence:
    """n images; refused: how many the reference refused; cams_compared: the maps with evidence in the reference
    (a flat map has no correlation: it must then be flat in the candidate too, counted in flat_maps_differ)."""

    n: int
    refused: int
    max_probability_difference: float
    labels_differ: int
    refusals_differ: int
    cams_compared: int
    min_cam_correlation: float
    flat_maps_differ: int
    max_cam_difference: float

    def failures(self) -> list[str]:
        """What breaks the promise of the same answers (empty: equivalent)."""
        found = []
        if not self.max_probability_difference <= MAX_PROBABILITY_DIFFERENCE:
            found.append(f"probabilities differ by up to {self.max_probability_difference:.2g}")
        if self.labels_differ or self.refusals_differ or self.flat_maps_differ:
            found.append(
                f"{self.labels_differ} labels, {self.refusals_differ} refusals and {self.flat_maps_differ} flat "
                "maps differ"
            )
        if not self.min_cam_correlation >= MIN_CAM_CORRELATION:
            found.append(f"a Grad-CAM map correlates at {self.min_cam_correlation:.3f} only")
        return found

    def as_dict(self) -> dict[str, Any]:
        return {k: round(float(v), 7) if isinstance(v, float) else int(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Answers:
    """One Predictor's answers on a set of images: each image's Judged or refusal, and the raw maps (n, h, w)."""

    outcomes: list[Judged | Exception]
    cams: np.ndarray


def answers(predictor: Predictor, images: np.ndarray, chroma: np.ndarray) -> Answers:
    """images: (n, S, S) uint8 model inputs, chroma: (n,) their colour; judged at the card's point."""
    prepared: list[Prepared | Exception] = [
        Prepared(model_input=x, display=np.zeros((1, 1), np.uint8), chroma=float(c), prepare_ms=0.0)
        for x, c in zip(images, chroma, strict=True)
    ]
    return Answers(predictor.judge_prepared(prepared), predictor.gradcam.batch(images, predictor.batch)[1])


def compare(reference: Answers, candidate: Answers, cam_scale: float) -> Equivalence:
    """The candidate's answers against the reference's, on the same images; cam_scale: the card's."""
    ref, new = reference.outcomes, candidate.outcomes
    judged = [(a, b) for a, b in zip(ref, new, strict=True) if isinstance(a, Judged) and isinstance(b, Judged)]
    pairs = list(zip(reference.cams, candidate.cams, strict=True))
    correlations = [_correlation(a, b) for a, b in pairs if np.ptp(a) > 0]
    return Equivalence(
        n=len(ref),
        refused=sum(not isinstance(a, Judged) for a in ref),
        max_probability_difference=max((abs(a.probability - b.probability) for a, b in judged), default=0.0),
        labels_differ=sum(a.label != b.label for a, b in judged),
        refusals_differ=sum(_decision(a) != _decision(b) for a, b in zip(ref, new, strict=True)),
        cams_compared=len(correlations),
        min_cam_correlation=min(correlations, default=1.0),
        flat_maps_differ=sum(np.ptp(b) > 0 for a, b in pairs if np.ptp(a) == 0),
        max_cam_difference=float(np.abs(reference.cams - candidate.cams).max() / cam_scale),
    )


def _decision(outcome: Judged | Exception) -> str | None:
    """None for a judged image, else the clinician's sentence of its refusal (the figures after DETAIL dropped)."""
    return None if isinstance(outcome, Judged) else str(outcome).split(DETAIL)[0]


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    if np.ptp(b) == 0:
        return 0.0
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def image_set(root: Path, non_radiographs: int = 32) -> tuple[np.ndarray, np.ndarray, str]:
    """The images two runtimes are compared on, as model inputs (n, S, S) uint8 with their chroma, and what they
    are: the 16 official validation radiographs, TRAINING_IMAGES training radiographs, the 16 inverted, and
    non-radiographs (worker.ml.nonxray: photographs and drawings, in colour), so that refusals are compared too."""
    import cv2

    from worker.ml import nonxray, pixels, preprocessing

    train = data.list_folder(root / "train")
    items = data.list_folder(root / "val") + train[:: max(1, len(train) // TRAINING_IMAGES)][:TRAINING_IMAGES]
    x, chroma = data.load_inputs(items)
    others = list(nonxray.images(non_radiographs))
    gray = np.stack([preprocessing.model_input(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)) for img in others])
    images = np.concatenate([x, 255 - x[:16], gray])
    chroma = np.concatenate([chroma, chroma[:16], [pixels.chroma_of(img) for img in others]])
    what = f"{len(items)} radiographs (16 official validation, {len(items) - 16} training), "
    return images, chroma, what + f"the 16 validation ones inverted, {len(others)} non-radiographs"
