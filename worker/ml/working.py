"""An image's working copy: what the worker needs of it, made once where the image is first decoded.

The web server decodes every upload at its gate, to refuse a broken file at once and to draw the preview. Without a
working copy the worker would decode the original a second time: 15-115 ms for a clinical radiograph of 2,000-2,500
pixels a side (0.4 ms for a 224-pixel training image), the largest cost left on a GPU worker. The working copy holds
what that decode gives the worker, and costs it a fraction of a millisecond to read:

- model_pgm: the grey levels at the model's input size (`preprocessing.resized`) as a binary PGM. It is lossless,
  so the model input is the same to the bit as from the original, and it is written and read in microseconds
  (a PNG of it costs 1 ms to write);
- display_jpeg: the radiograph at up to DISPLAY_SIDE pixels a side (the study's preview), which the overlay is
  drawn on. It is decoded only when there is a map to draw on it: a NORMAL call's overlay is the radiograph
  itself, and then it is this JPEG as it is (`Preview`), with neither a decode nor an encode;
- chroma: its colour, for the gate.

The original stays the record: a copy that is unreadable, or was made for a model of another input size, is not
used (`read` returns None), and the original is decoded instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import simplejpeg

from worker.ml import overlay
from worker.ml.preprocessing import DecodedImage, display_image, resized
from worker.ml.spec import INPUT_SIZE

DISPLAY_SIDE = 1024  # the preview's longest side: more than any overlay needs (768)
# The model copy's file name carries the version of the preprocessing that made it: bump it whenever
# `preprocessing.resized` (or what make() stores) changes, and copies made before are not used (nor trusted).
FILE_NAME = "model-input-v1.pgm"


@dataclass(frozen=True)
class WorkingCopy:
    model_pgm: bytes
    display_jpeg: bytes
    chroma: float


def make(decoded: DecodedImage, size: int = INPUT_SIZE) -> WorkingCopy:
    """The working copy of a decoded image, for a model whose input is size x size."""
    return WorkingCopy(
        model_pgm=overlay.encode(".pgm", resized(decoded.gray, size), []),
        display_jpeg=overlay.encode_jpeg(display_image(decoded.gray, DISPLAY_SIDE)),
        chroma=decoded.chroma,
    )


@dataclass(frozen=True)
class Preview:
    """A working copy's preview, the radiograph the overlay is drawn on, still as its JPEG: decoded only when a
    map is drawn on it. width and height are the JPEG's, read from its header."""

    jpeg: bytes
    width: int
    height: int

    def render(self, cam: np.ndarray) -> tuple[bytes, bytes]:
        """overlay.render on this radiograph: (heatmap PNG, overlay JPEG). Where the map is empty (a NORMAL call)
        the overlay is the preview itself. Raises ValueError when the JPEG cannot be decoded after all."""
        if not cam.any():
            return overlay.heatmap_png(cam, self.width, self.height), self.jpeg
        return overlay.render(self.gray(), cam)

    def gray(self) -> np.ndarray:
        """The radiograph at display size (preprocessing.display_image), as the original's decode gives it."""
        gray = _gray(self.jpeg)
        if gray is None:
            raise ValueError("the study's preview cannot be decoded")
        return display_image(gray)


def read(copy: WorkingCopy, size: int) -> tuple[np.ndarray, Preview] | None:
    """(the grey levels at size x size, the preview to draw on), or None when the copy cannot serve: unreadable,
    or made for another input size (the original is decoded then)."""
    model = _gray(copy.model_pgm)
    preview = _preview(copy.display_jpeg)
    if model is None or preview is None or model.shape != (size, size):
        return None
    return model, preview


def _preview(data: bytes) -> Preview | None:
    """The preview, its size read from the JPEG's header (libjpeg-turbo reads no further: about 1 us, against 22
    for Pillow's open); None if it is not a JPEG, or if it lacks its image data or its end (cut short in
    storage): it may become a NORMAL call's overlay as it is."""
    if b"\xff\xda" not in data or not data.endswith(b"\xff\xd9"):  # a start of scan, and the end of the image
        return None
    try:
        height, width, _, _ = simplejpeg.decode_jpeg_header(data)
    except ValueError:
        return None
    return Preview(data, width, height)


def _gray(data: bytes) -> np.ndarray | None:
    """8-bit grey levels, or None. OpenCV decodes without the GIL, so a worker's threads decode side by side."""
    if not data:
        return None
    flags = cv2.IMREAD_GRAYSCALE | cv2.IMREAD_IGNORE_ORIENTATION
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    return None if image is None or image.dtype != np.uint8 else image
