"""Decode an uploaded radiograph and turn it into the model's input.

Every image, whatever its format, mode or bit depth, goes through the same path:
decode -> EXIF orientation -> grayscale float -> 8-bit window -> area resize to the model's input size.
Training, evaluation and the worker all call `model_input`, so they can never disagree.
"""

from __future__ import annotations

import io

import cv2
import numpy as np
import simplejpeg
from PIL import Image, ImageOps, UnidentifiedImageError

from worker.ml import dicom
from worker.ml.limits import DEFAULT_MAX_PIXELS
from worker.ml.masks import mask_corners
from worker.ml.pixels import DecodedImage, ImageRejected, check_not_blank, check_size, chroma_of, window_to_uint8
from worker.ml.spec import INPUT_SIZE

ALLOWED_FORMATS = frozenset({"JPEG", "PNG"})


def decode(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> DecodedImage:
    """Decode JPEG/PNG bytes of any mode or bit depth, or a DICOM radiograph (worker.ml.dicom). Raises
    ImageRejected with a clear reason."""
    if not data:
        raise ImageRejected("The file is empty.")
    if dicom.is_dicom(data):
        return dicom.read(data, max_pixels).decoded
    img = _open(data, max_pixels)
    fmt = str(img.format)
    try:
        img.load()
        img = ImageOps.exif_transpose(img)
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageRejected(f"The image is truncated or corrupt ({exc}).") from exc
    width, height = img.size
    gray = check_not_blank(_to_gray8(img))
    if fmt == "JPEG":
        _check_jpeg_complete(data)
    return DecodedImage(gray=gray, chroma=_chroma(img), width=width, height=height, format=fmt)


def _check_jpeg_complete(data: bytes) -> None:
    """A JPEG whose data ends early, then carries an end marker (as a transfer cut off and "repaired" leaves it),
    still decodes: libjpeg fills what is missing with mid-grey, and Pillow only warns. libjpeg-turbo's strict mode
    (simplejpeg) says so: such an image is refused, not judged with a part of it missing. Its other recoverable
    warnings (extraneous bytes before a marker, as some devices write) are left alone, as Pillow leaves them.
    It decodes at an eighth of the size (min_height/min_width 1): every coded block is still read, so the check is
    the same, at half the cost (3.5 against 7.3 ms for a 2,400x2,000 radiograph)."""
    try:
        colorspace = "CMYK" if simplejpeg.decode_jpeg_header(data)[2] == "CMYK" else "GRAY"
        simplejpeg.decode_jpeg(data, colorspace=colorspace, strict=True, min_height=1, min_width=1)
    except ValueError as exc:
        if "premature end" in str(exc).lower():
            raise ImageRejected(
                "The image is truncated or corrupt (its image data ends early: a part of it is missing)."
            ) from exc


def _open(data: bytes, max_pixels: int) -> Image.Image:
    try:
        img = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as exc:
        raise ImageRejected("The file is not a JPEG or PNG image.") from exc
    except Image.DecompressionBombError as exc:  # far above max_pixels: Pillow refuses it before we see its size
        raise ImageRejected(
            f"The image is too large to decode safely; the limit is {max_pixels // 1_000_000} megapixels."
        ) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageRejected(f"The image cannot be read ({exc}).") from exc
    if img.format not in ALLOWED_FORMATS:
        raise ImageRejected(f"Unsupported image format {img.format}; upload a JPEG, PNG or DICOM file.")
    check_size(*img.size, max_pixels)
    return img


def _to_gray8(img: Image.Image) -> np.ndarray:
    """Any PIL mode -> (H, W) uint8. High bit depths are windowed on their 0.5-99.5 percentiles."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float32)
        return window_to_uint8(arr)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (0, 0, 0, 255))
        img = Image.alpha_composite(background, img)
    return np.asarray(img.convert("L"), dtype=np.uint8)


def _chroma(img: Image.Image) -> float:
    """Mean saturation of the image at most 256 pixels a side (an RGB image that small is read as it is: no copy)."""
    if img.mode not in ("RGB", "RGBA", "P", "CMYK", "YCbCr"):
        return 0.0
    small = img
    if img.mode != "RGB" or max(img.size) > 256:
        small = img.convert("RGB")
        small.thumbnail((256, 256))
    return chroma_of(np.asarray(small))


def model_input(gray: np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
    """(H, W) uint8 -> (size, size) uint8 grey levels: an area resize, then the four corners set to the median grey.

    Exposure and contrast are left to the model, which was trained under random gamma, contrast and brightness
    (`worker.ml.train.augment`, which ends with this same `masks.mask_corners`). The corners hold side markers and text,
    not lung: masking them removes that shortcut by construction. v1's CLAHE is gone: the v2 trainer runs on a
    GPU machine without OpenCV, and the trainer and this function must see the same pixels.
    """
    return mask_corners(resized(gray, size))


def resized(gray: np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
    """(H, W) uint8 -> (size, size) uint8 by area averaging (linear when enlarging); a no-op at that size."""
    if gray.shape == (size, size):
        return np.asarray(gray, dtype=np.uint8)
    interp = cv2.INTER_AREA if min(gray.shape) >= size else cv2.INTER_LINEAR
    return np.asarray(cv2.resize(gray, (size, size), interpolation=interp), dtype=np.uint8)


def display_image(gray: np.ndarray, max_side: int = 768) -> np.ndarray:
    """(H, W) uint8 -> downscaled (h, w) uint8 with the longest side <= max_side, for overlays."""
    h, w = gray.shape
    scale = min(1.0, max_side / max(h, w))
    if scale == 1.0:
        return gray
    return cv2.resize(gray, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
