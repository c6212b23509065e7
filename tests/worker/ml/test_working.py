"""The working copy (issue 12: decode once): the worker's model input from it is the original's, to the bit."""

import cv2
import numpy as np
import pytest

from tests import images
from worker.ml import overlay, working
from worker.ml.preprocessing import decode, display_image, model_input

SIXTEEN_BIT = images.encode(images.chest_like(900, 700).astype(np.uint16) * 16, "PNG")  # 12 bits in 16
COLOUR = images.encode(images.colour_noise(300))


@pytest.mark.parametrize(
    "data",
    [images.png(1500, 2000), images.jpeg(2400, 2000), images.png(150, 120), SIXTEEN_BIT, COLOUR],
    ids=["large PNG", "large JPEG", "small PNG", "16-bit PNG", "colour"],
)
def test_the_copy_gives_the_originals_model_input_display_and_colour(data: bytes) -> None:
    decoded = decode(data)
    copy = working.make(decoded)
    read = working.read(copy, 224)
    assert read is not None
    gray, preview = read
    assert np.array_equal(model_input(gray), model_input(decoded.gray))  # bit for bit, whatever the size or depth
    assert (preview.jpeg, preview.width, preview.height) == (copy.display_jpeg, *reversed(_shape(copy.display_jpeg)))
    display, expected = preview.gray(), display_image(decoded.gray)
    assert display.shape == expected.shape
    assert np.abs(display.astype(int) - expected.astype(int)).mean() < 4  # from the JPEG preview (q90, on noise)
    assert copy.chroma == decoded.chroma
    assert copy.model_pgm.startswith(b"P5\n224 224\n255\n") and len(copy.model_pgm) < 224 * 224 + 20


def test_a_copy_made_for_another_input_size_or_that_cannot_be_read_is_not_used() -> None:
    copy = working.make(decode(images.png(400, 300)), size=256)
    assert working.read(copy, 256) is not None
    assert working.read(copy, 224) is None  # a model of another input size: its original is decoded instead
    good = working.make(decode(images.png(400, 300)))
    for broken in (
        working.WorkingCopy(good.model_pgm[:40], good.display_jpeg, 0.0),
        working.WorkingCopy(b"", good.display_jpeg, 0.0),
        working.WorkingCopy(good.model_pgm, b"not a jpeg", 0.0),
        working.WorkingCopy(good.display_jpeg, good.display_jpeg, 0.0),  # the preview where the model's copy is
    ):
        assert working.read(broken, 224) is None


def _shape(image: bytes) -> tuple[int, int]:
    height, width = np.asarray(cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_GRAYSCALE)).shape
    return height, width


def test_a_normal_calls_overlay_is_the_preview_itself_and_a_map_is_drawn_on_it_decoded() -> None:
    """Nothing to draw (a NORMAL call's map is empty): the preview is the overlay, neither decoded nor encoded."""
    copy = working.make(decode(images.jpeg(2400, 2000)))
    read = working.read(copy, 224)
    assert read is not None
    preview = read[1]
    empty = np.zeros((14, 14), np.float32)
    heatmap, over = preview.render(empty)
    assert over is copy.display_jpeg
    assert heatmap == overlay.heatmap_png(empty, 1024, 853) and _shape(heatmap) == (53, 64)
    cam = np.zeros((14, 14), np.float32)
    cam[4:8, 4:8] = 1.0
    assert preview.render(cam) == overlay.render(preview.gray(), cam)
    assert _shape(preview.render(cam)[1]) == (640, 768)


def test_a_preview_cut_short_is_not_used_and_one_that_cannot_be_decoded_fails_when_drawn_on() -> None:
    """A NORMAL call's overlay is the preview as stored, never decoded: so a preview without its image data, or
    cut short, is not used at all (the original is decoded instead)."""
    good = working.make(decode(images.png(400, 300)))
    jpeg = good.display_jpeg
    for broken in (jpeg[: jpeg.index(b"\xff\xda")], jpeg[: len(jpeg) // 2], jpeg[:-2]):
        assert working.read(working.WorkingCopy(good.model_pgm, broken, 0.0), 224) is None
    with pytest.raises(ValueError, match="cannot be decoded"):
        working.Preview(b"\xff\xd8 not a jpeg after all", 400, 300).render(np.ones((14, 14), np.float32))
