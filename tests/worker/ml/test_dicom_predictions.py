"""The same radiograph as a JPEG and as each DICOM variant gets the same call, its probability within 0.02.
Variants without a window are windowed like a 16-bit PNG, so they are compared with that PNG."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tests import dicoms, images
from tests.needs import need_training_images
from worker.ml.inference import Predictor

pytestmark = pytest.mark.data
CASES = [("PNEUMONIA", 0), ("PNEUMONIA", 1), ("NORMAL", 0), ("NORMAL", 1)]


@pytest.fixture(scope="module")
def predictor(shipped_predictor: Predictor) -> Predictor:
    need_training_images()
    return shipped_predictor


@pytest.mark.parametrize(("label", "index"), CASES)
def test_every_dicom_variant_gets_the_jpegs_call(predictor: Predictor, label: str, index: int) -> None:
    jpeg = images.real_radiograph(label, index)
    gray = np.asarray(Image.open(io.BytesIO(jpeg)).convert("L"))
    as_jpeg = predictor.predict(jpeg)
    as_png16 = predictor.predict(images.encode(gray.astype(np.uint16) * 257, "PNG"))
    for variant in dicoms.VARIANTS:
        reference = as_png16 if "no_window" in variant else as_jpeg
        got = predictor.predict(dicoms.radiograph(gray, variant, PatientAge="004Y", ViewPosition="PA"))
        assert got.label == reference.label, variant
        assert abs(got.probability - reference.probability) <= 0.02, (variant, got.probability, reference.probability)
