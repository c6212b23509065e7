"""DICOM radiographs for tests, built with pydicom from a gray image (a training radiograph or a synthetic one).

Every variant shows the same 8-bit picture once its header is applied (windows chosen so), except the variants
without any window, which get the percentile window of 16-bit PNGs, and JPEG baseline, which is lossy.
"""

from __future__ import annotations

import io
from typing import Any

import imagecodecs
import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    UID,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
    generate_uid,
)

DX_CLASS = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray Image Storage - For Presentation
CR_CLASS = "1.2.840.10008.5.1.4.1.1.1"
PDF_CLASS = "1.2.840.10008.5.1.4.1.1.104.1"

# name -> (bits stored, MONOCHROME1?, header window, transfer syntax)
VARIANTS = (
    "mono2_8bit",
    "mono1_12bit_window",
    "mono2_12bit_rescale_window",
    "mono2_16bit_no_window",
    "mono1_16bit_no_window",
    "voi_lut_12bit",
    "jpeg_baseline",
    "jpeg_lossless_12bit",
    "jpeg_ls_lossless",
    "jpeg2000_lossless",
    "rle_lossless",
)


def base_dataset(modality: str = "DX", **header: Any) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = DX_CLASS if modality == "DX" else CR_CLASS
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = modality
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "MRN-0042"
    ds.PatientBirthDate = "20200101"
    ds.PatientSex = "F"
    ds.StudyDate = "20240315"
    ds.StudyTime = "101500"
    ds.AccessionNumber = "ACC-1"
    ds.ReferringPhysicianName = "House^Gregory"
    ds.InstitutionName = "Northside Hospital"
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.BodyPartExamined = "CHEST"
    ds.PatientOrientation = ""
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.BurnedInAnnotation = "NO"
    for key, value in header.items():
        if value is None:
            ds.pop(key, None)
        else:
            setattr(ds, key, value)
    return ds


def _pixels(ds: Dataset, arr: np.ndarray, bits_stored: int, photometric: str = "MONOCHROME2") -> None:
    ds.Rows, ds.Columns = arr.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = 8 if bits_stored == 8 else 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 0
    ds.PixelData = arr.astype(np.uint8 if bits_stored == 8 else np.uint16).tobytes()


def _window_for(scale: float, offset: float) -> tuple[float, float]:
    """The (center, width) whose DICOM linear window maps value = scale * g + offset back to g (0-255)."""
    width = 255.0 * scale + 1.0
    center = offset + 0.5 + (width - 1.0) / 2.0
    return center, width


def radiograph(gray: np.ndarray, variant: str = "mono2_8bit", modality: str = "DX", **header: Any) -> bytes:
    """gray: (H, W) uint8 -> the Part 10 bytes of one DICOM variant (see VARIANTS)."""
    ds = base_dataset(modality, **header)
    g = gray.astype(np.int64)
    if variant in ("mono2_8bit", "jpeg_baseline", "rle_lossless", "jpeg2000_lossless"):
        _pixels(ds, g, 8)
    elif variant == "mono1_12bit_window":
        _pixels(ds, (255 - g) * 16 + 8, 12, "MONOCHROME1")
        ds.WindowCenter, ds.WindowWidth = _window_for(16, 8)
    elif variant in ("mono2_12bit_rescale_window", "jpeg_lossless_12bit", "jpeg_ls_lossless"):
        _pixels(ds, g * 16 + 8, 12)
        ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = 2, -1000, "US"
        ds.WindowCenter, ds.WindowWidth = _window_for(32, 16 - 1000)
    elif variant == "mono2_16bit_no_window":
        _pixels(ds, g * 257, 16)
    elif variant == "mono1_16bit_no_window":
        _pixels(ds, (255 - g) * 257, 16, "MONOCHROME1")
    elif variant == "voi_lut_12bit":
        _pixels(ds, g * 16, 12)
        lut = Dataset()
        lut.LUTDescriptor = [4096, 0, 8]
        lut.LUTData = (np.arange(4096) // 16).astype(np.uint16).tolist()
        lut["LUTData"].VR = "US"
        ds.VOILUTSequence = [lut]
        ds.WindowCenter, ds.WindowWidth = 100, 50  # ignored: the VOI LUT wins
    else:
        raise ValueError(f"unknown variant {variant}")
    _compress(ds, variant)
    return to_bytes(ds)


def _compress(ds: Dataset, variant: str) -> None:
    frame = np.frombuffer(ds.PixelData, np.uint8 if ds.BitsAllocated == 8 else np.uint16).reshape(ds.Rows, ds.Columns)
    if variant == "jpeg_baseline":
        _encapsulate(ds, imagecodecs.jpeg8_encode(frame, level=95), JPEGBaseline8Bit)
    elif variant == "jpeg_lossless_12bit":
        data = imagecodecs.jpeg8_encode(frame, lossless=True, predictor=1, bitspersample=12)
        _encapsulate(ds, data, JPEGLosslessSV1)
    elif variant == "jpeg_ls_lossless":
        _encapsulate(ds, imagecodecs.jpegls_encode(frame, level=0), JPEGLSLossless)
    elif variant == "jpeg2000_lossless":
        ds.compress(JPEG2000Lossless)
    elif variant == "rle_lossless":
        ds.compress(RLELossless)


def _encapsulate(ds: Dataset, frame: bytes | bytearray, syntax: str) -> None:
    ds.PixelData = encapsulate([bytes(frame)])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = UID(syntax)


def to_bytes(ds: Dataset) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def encapsulated_pdf() -> bytes:
    ds = base_dataset("DX")
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = UID(PDF_CLASS)
    ds.Modality = "DOC"
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocument = b"%PDF-1.4\n%%EOF\n"
    return to_bytes(ds)


def stow_body(*parts: bytes | tuple[bytes, str], boundary: str = "stow-boundary-42") -> tuple[str, bytes]:
    """A STOW-RS request: (its Content-Type, its multipart/related body); a part is its bytes (application/dicom)
    or (bytes, its content type)."""
    chunks = []
    for part in parts:
        data, kind = part if isinstance(part, tuple) else (part, "application/dicom")
        chunks.append(f"--{boundary}\r\nContent-Type: {kind}\r\n\r\n".encode() + data + b"\r\n")
    body = b"".join(chunks) + f"--{boundary}--\r\n".encode()
    return f'multipart/related; type="application/dicom"; boundary={boundary}', body
