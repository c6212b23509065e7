"""Why an image is refused: a picture that is not a chest X-ray is told so, and only a radiograph that is inverted is
told it is inverted (the polarity detector alone called 7 of 8 photographs inverted)."""

from __future__ import annotations

import gzip
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from tests import images
from worker.ml import polarity, preprocessing, refusals
from worker.ml.gate import COLOUR, DETAIL, NOT_A_RADIOGRAPH, Gate
from worker.ml.inference import Predictor
from worker.ml.polarity import INVERTED
from worker.ml.spec import ModelSpec

NEAR, FAR = np.zeros(4), np.full(4, 10.0)


def _toy_gate() -> Gate:
    return Gate(mean=np.zeros(4), precision=np.eye(4), max_distance=3.0, max_chroma=0.12)


@pytest.fixture(scope="module")
def detector() -> polarity.Polarity:
    return polarity.fit(np.stack([images.chest_like(224, 224, seed=i) for i in range(30)]))


def _upright_and_negative() -> np.ndarray:
    chest = images.chest_like(224, 224, seed=500)
    return np.stack([chest, 255 - chest])


def test_it_asks_whether_a_flagged_image_inverted_back_is_a_radiograph(detector: polarity.Polarity) -> None:
    pair = _upright_and_negative()  # the detector flags the second
    asked: list[int] = []

    def features_of(flipped: np.ndarray, near: bool) -> np.ndarray:
        asked.append(len(flipped))
        return np.stack([NEAR if near else FAR] * len(flipped))

    gate, chroma, far = _toy_gate(), np.zeros(2), np.stack([NEAR, FAR])

    def run(near: bool) -> list[str | None]:
        return refusals.reasons(
            pair, far, chroma, gate=gate, polarity=detector, features_of=lambda x: features_of(x, near)
        )

    upright, negative = run(near=True)
    assert upright is None and (negative or "").startswith(INVERTED)
    assert asked == [1]  # only the flagged image pays for a second pass
    # Flagged, but inverted it is no radiograph either: not a chest X-ray, even where the gate alone would pass it.
    _, photo = refusals.reasons(
        pair, np.stack([NEAR, NEAR]), chroma, gate=gate, polarity=detector, features_of=lambda x: features_of(x, False)
    )
    assert (photo or "").startswith(NOT_A_RADIOGRAPH)


def test_colour_comes_first_and_the_figures_follow_the_sentence(detector: polarity.Polarity) -> None:
    pair = _upright_and_negative()
    never = lambda x: pytest.fail("colour needs no second pass")  # noqa: E731
    out = refusals.reasons(
        pair, np.stack([FAR, FAR]), np.array([0.5, 0.5]), gate=_toy_gate(), polarity=detector, features_of=never
    )
    assert all((r or "").startswith(COLOUR + DETAIL + "colour saturation 0.50, limit 0.12") for r in out)
    far_upright = refusals.reasons(
        pair[:1], FAR[None], np.zeros(1), gate=_toy_gate(), polarity=detector, features_of=never
    )[0]
    assert far_upright == f"{NOT_A_RADIOGRAPH}{DETAIL}feature distance 20.0 from the training radiographs, limit 3.0."


def test_without_a_gate_the_detector_has_the_word(detector: polarity.Polarity) -> None:
    out = refusals.reasons(
        _upright_and_negative(),
        np.stack([FAR, FAR]),
        np.zeros(2),
        gate=None,
        polarity=detector,
        features_of=lambda x: pytest.fail("no gate to ask"),
    )
    assert out[0] is None and (out[1] or "").startswith(INVERTED)


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return Predictor(ModelSpec.load())


def _skimage(name: str, mode: str) -> np.ndarray:
    import skimage

    return np.asarray(Image.open(next((Path(skimage.__file__).parent / "data").glob(f"{name}.*"))).convert(mode))


def _axial_chest_ct(seed: int) -> np.ndarray:
    """A synthesised axial chest CT slice in a soft-tissue window: body, dark lungs, heart, vertebra, ribs, table."""
    rng = np.random.default_rng(seed)
    im = np.zeros((512, 512), np.float32)
    cv2.ellipse(im, (256, 270), (200, 140), 0, 0, 360, 150, -1)
    for cx, tilt in ((170, 10), (342, -10)):
        cv2.ellipse(im, (cx, 250), (70, 95), tilt, 0, 360, 15, -1)
    cv2.ellipse(im, (256, 225), (45, 55), 0, 0, 360, 165, -1)
    cv2.circle(im, (256, 365), 22, 245, -1)
    for a in np.linspace(0.2, np.pi - 0.2, 12):
        for side in (-1, 1):
            cv2.circle(im, (int(256 + side * 190 * np.cos(a)), int(270 + 130 * np.sin(a))), 6, 235, -1)
    cv2.rectangle(im, (60, 430), (452, 440), 90, -1)
    return np.clip(im + rng.normal(0, 6, im.shape), 0, 255).astype(np.uint8)


def _mr_slice() -> np.ndarray:
    """The MR head slice that ships with matplotlib (16-bit), stretched to 8 bits."""
    import matplotlib

    with gzip.open(Path(matplotlib.get_data_path()) / "sample_data" / "s1045.ima.gz") as fh:
        mri = np.frombuffer(fh.read(), np.uint16).reshape(256, 256).astype(np.float64)
    return (mri * (255 / mri.max())).astype(np.uint8)


def _not_radiographs() -> dict[str, tuple[bytes, str]]:
    """name -> (file, the reason's opening): the trial's photographs (in colour and in grey), a camera negative, a
    document, a CT phantom, synthesised chest CT slices (and one in reverse video) and an MR slice."""
    cases: dict[str, tuple[bytes, str]] = {}
    for name in ("chelsea", "astronaut", "coffee"):
        cases[name] = (images.encode(_skimage(name, "RGB")), COLOUR)
    for name in ("chelsea", "astronaut", "brick", "coffee", "horse", "page", "camera", "phantom"):
        cases[f"{name} grey"] = (images.encode(_skimage(name, "L")), NOT_A_RADIOGRAPH)
    cases["camera negative"] = (images.encode(255 - _skimage("camera", "L")), NOT_A_RADIOGRAPH)
    for seed in range(2):
        cases[f"chest CT {seed}"] = (images.encode(_axial_chest_ct(seed)), NOT_A_RADIOGRAPH)
    cases["chest CT reversed"] = (images.encode(255 - _axial_chest_ct(2)), NOT_A_RADIOGRAPH)
    cases["MR slice"] = (images.encode(_mr_slice()), NOT_A_RADIOGRAPH)
    return cases


def test_the_shipped_model_tells_a_picture_that_is_no_radiograph_so(predictor: Predictor) -> None:
    cases = _not_radiographs()
    outcomes = predictor.predict_batch([data for data, _ in cases.values()])
    said = {name: str(o) for name, o in zip(cases, outcomes, strict=True)}
    wrong = {name: said[name] for name, (_, opening) in cases.items() if not said[name].startswith(opening)}
    assert not wrong, wrong
    assert all(DETAIL in reason for reason in said.values())  # the figures, for the curious


@pytest.mark.data
def test_the_shipped_model_tells_an_inverted_radiograph_it_is_inverted(predictor: Predictor) -> None:
    if not images.SHARED_DATA.exists():
        pytest.skip(images.NO_DATA_REASON)
    files = [images.real_radiograph(label, i) for label in ("NORMAL", "PNEUMONIA") for i in range(4)]
    negatives = [images.encode(255 - preprocessing.decode(f).gray) for f in files]
    outcomes = predictor.predict_batch(files + negatives)
    assert all(not isinstance(o, Exception) for o in outcomes[: len(files)])
    assert all(str(o).startswith(INVERTED) for o in outcomes[len(files) :]), outcomes[len(files) :]
