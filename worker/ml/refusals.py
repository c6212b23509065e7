"""Why an image is refused, asked in the order a clinician's answer needs: is it a chest X-ray at all, and only then
is it the right way round.

The polarity detector looks only at where the image is bright and dark, so on a photograph it answers at random
(7 of 8 of scikit-image's photographs had P(inverted) >= 0.5), and the gate alone cannot tell a negative radiograph
from a photograph: both lie far from the training radiographs. An image the detector calls inverted is therefore
inverted back and shown to the gate again: a negative radiograph, inverted, lies among the training radiographs
(distance 22-26 on the shipped model, limit 39.5), a photograph does not (40-79). Only the images the detector flags
pay for that second forward pass, and an upright radiograph is almost never flagged.

Each reason is the clinician's sentence, then the figures after gate.DETAIL (the job's reason keeps both). The
sentence is English (this package is Django-free); code() names it, so that the web pages say it in the reader's
language (diagnosis.refusal_words) from the code and the figures.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from worker.ml.gate import COLOUR, DETAIL, NOT_A_RADIOGRAPH, Gate, explained
from worker.ml.polarity import INVERTED, Polarity
from worker.ml.polarity import detail as inverted_detail

Features = Callable[[np.ndarray], np.ndarray]

# Stable codes of the refusals' sentences.
COLOUR_CODE = "colour"
INVERTED_CODE = "inverted"
NOT_A_RADIOGRAPH_CODE = "not_a_radiograph"
_CODES = {COLOUR: COLOUR_CODE, INVERTED: INVERTED_CODE, NOT_A_RADIOGRAPH: NOT_A_RADIOGRAPH_CODE}


def code(reason: str) -> str | None:
    """The code of a reason given here (or by the gate or the detector alone); None for any other text."""
    return _CODES.get(reason.partition(DETAIL)[0])


def detail(reason: str) -> str:
    """A reason's figures (after gate.DETAIL, without the closing full stop); "" when it has none."""
    _, found, figures = reason.partition(DETAIL)
    return figures.removesuffix(".") if found else ""


def reasons(
    images: np.ndarray,
    features: np.ndarray,
    chroma: np.ndarray,
    *,
    gate: Gate | None,
    polarity: Polarity | None,
    features_of: Features,
) -> list[str | None]:
    """images: (n, S, S) uint8 model inputs; features: (n, d) their pooled features; chroma: (n,) in [0, 1];
    features_of: (k, S, S) uint8 -> (k, d), the model's features of other images (called only for the images the
    detector calls inverted, at most once). Returns why each image is refused, None where it may be judged:

    1. colour (the gate's chroma limit): a colour photograph;
    2. P(inverted) >= 0.5: inverted if the inverted image passes the gate, else not a chest X-ray;
    3. the gate's distance limit: not a chest X-ray.
    Without a gate the detector's word stands; without a detector the gate's."""
    n = len(images)
    p_inverted = polarity.p_inverted(images) if polarity is not None else np.zeros(n)
    if gate is None:
        return [explained(INVERTED, inverted_detail(p)) if p >= 0.5 else None for p in p_inverted.tolist()]
    distances = gate.distances(features)
    colour = np.asarray(chroma) > gate.max_chroma
    flagged = np.flatnonzero((p_inverted >= 0.5) & ~colour)
    inverse = np.full(n, np.nan)
    if flagged.size:
        inverse[flagged] = gate.distances(features_of(255 - images[flagged]))
    return [
        _reason(gate, float(c), float(d), float(p), float(i))
        for c, d, p, i in zip(chroma, distances, p_inverted, inverse, strict=True)
    ]


def _reason(gate: Gate, chroma: float, distance: float, p_inverted: float, inverse: float) -> str | None:
    """inverse: the gate distance of the inverted image, NaN where it was not measured (not flagged)."""
    if chroma > gate.max_chroma:
        return explained(COLOUR, gate.colour_detail(chroma))
    if p_inverted >= 0.5:
        if inverse <= gate.max_distance:
            return explained(
                INVERTED,
                f"{inverted_detail(p_inverted)}; inverted, {gate.distance_detail(inverse)} (as sent, {distance:.1f})",
            )
        return explained(
            NOT_A_RADIOGRAPH,
            f"{gate.distance_detail(distance)}; {inverted_detail(p_inverted)}, but inverted it lies at {inverse:.1f}",
        )
    if distance > gate.max_distance:
        return explained(NOT_A_RADIOGRAPH, gate.distance_detail(distance))
    return None
