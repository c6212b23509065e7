"""DICOM radiographs in: read, check and turn into 8-bit gray like any upload (no Django; the stored copy is
de-identified by worker.ml.deidentify).

Pixels: compressed transfer syntaxes decode through pydicom's pylibjpeg plug-ins (JPEG baseline/extended/lossless,
JPEG-LS, JPEG 2000, RLE). Then the Modality LUT (rescale slope/intercept), the VOI LUT or the first window from the
header, and MONOCHROME1 inversion; with no window in the header the same 0.5-99.5 percentile window as a 16-bit PNG.

Only single-frame projection radiographs of the chest are judged: CR, DX, or a grayscale secondary capture of one.
Anything else (CT, MR, US, SR, encapsulated PDF, multi-frame) is refused with a reason naming what it is.
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_modality_lut

from worker.ml.limits import MIN_CONTRAST
from worker.ml.pixels import DecodedImage, ImageRejected, check_not_blank, check_size, chroma_of, window_to_uint8

logger = logging.getLogger(__name__)

PREAMBLE_END = 132
ACCEPTED_MODALITIES = frozenset({"CR", "DX"})
SECONDARY_CAPTURE_CLASSES = frozenset(
    {
        "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture Image
        "1.2.840.10008.5.1.4.1.1.7.2",  # Multi-frame Grayscale Byte SC (one frame only)
        "1.2.840.10008.5.1.4.1.1.7.3",  # Multi-frame Grayscale Word SC (one frame only)
    }
)
CHEST_PARTS = frozenset({"CHEST", "THORAX", "LUNG", "LUNGS", "CHEST_LAT", "CHESTABDOMEN", "CHEST_ABDOMEN"})
# Non-image objects, named in the refusal.
DOCUMENT_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.104.1": "an encapsulated PDF",
    "1.2.840.10008.5.1.4.1.1.104.2": "an encapsulated CDA document",
}
MODALITY_NAMES = {
    "CT": "a CT",
    "MR": "an MR",
    "US": "an ultrasound",
    "NM": "a nuclear medicine",
    "PT": "a PET",
    "MG": "a mammography",
    "XA": "an angiography",
    "RF": "a fluoroscopy",
    "SR": "a structured report (SR)",
    "DOC": "a document",
    "RTDOSE": "a radiotherapy dose",
    "RTSTRUCT": "a radiotherapy structure set",
    "RTPLAN": "a radiotherapy plan",
    "ECG": "an ECG waveform",
    "SEG": "a segmentation",
    "OT": "an 'other' modality",
}


@dataclass(frozen=True)
class DicomHeader:
    """What the service keeps from the header: the UIDs (to send results back) and the study details."""

    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class_uid: str
    modality: str
    patient_id: str
    patient_name: str
    birth_date: str
    accession: str
    age_years: int | None
    sex: str  # "F", "M", "O" or ""
    view_position: str  # "PA", "AP" or ""
    dropped: tuple[str, ...] = ()  # optional attributes left out for a value outside their value set, each in words


@dataclass(frozen=True)
class DicomImage:
    decoded: DecodedImage
    header: DicomHeader
    dataset: Dataset


def is_dicom(data: bytes) -> bool:
    """A DICOM Part 10 file: 128-byte preamble, then "DICM"."""
    return len(data) >= PREAMBLE_END and data[128:PREAMBLE_END] == b"DICM"


def read(data: bytes, max_pixels: int) -> DicomImage:
    """Part 10 bytes -> the gray image, its header and the dataset. Raises ImageRejected with a clear reason."""
    ds = parse(data)
    check_radiograph(ds)
    decoded = _decode_pixels(ds, max_pixels)
    return DicomImage(decoded=decoded, header=header_of(ds), dataset=ds)


def parse(data: bytes) -> Dataset:
    try:
        return pydicom.dcmread(io.BytesIO(data))
    except (InvalidDicomError, EOFError, OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ImageRejected(f"The DICOM file cannot be read ({exc}).") from exc


def check_radiograph(ds: Dataset) -> None:
    """Refuse, naming it, whatever is not a single-frame chest radiograph."""
    sop_class = str(ds.get("SOPClassUID", ""))
    modality = str(ds.get("Modality", "")).upper()
    if sop_class in DOCUMENT_CLASSES:
        raise ImageRejected(f"This DICOM file is {DOCUMENT_CLASSES[sop_class]}, not an image; send a chest radiograph.")
    if modality == "SR" or sop_class.startswith("1.2.840.10008.5.1.4.1.1.88."):
        raise ImageRejected("This DICOM file is a structured report (SR), not an image; send a chest radiograph.")
    if "PixelData" not in ds:
        raise ImageRejected(f"This DICOM file ({modality or 'no modality'}) holds no image; it may be truncated.")
    secondary = sop_class in SECONDARY_CAPTURE_CLASSES
    if modality not in ACCEPTED_MODALITIES and not (secondary and modality in ("", "OT", "SC", "DX", "CR")):
        what = MODALITY_NAMES.get(modality, f"modality {modality or 'unknown'}")
        raise ImageRejected(
            f"This DICOM file is {what} image (modality {modality or 'not given'}); "
            "only chest radiographs (CR or DX) are judged."
        )
    frames = _int(ds.get("NumberOfFrames", 1)) or 1
    if frames > 1:
        raise ImageRejected(f"This DICOM file is multi-frame ({frames} frames); send a single-frame chest radiograph.")
    part = str(ds.get("BodyPartExamined", "")).strip().upper()
    if part and part not in CHEST_PARTS:
        raise ImageRejected(f"The body part examined is {part}, not the chest; only chest radiographs are judged.")
    photometric = str(ds.get("PhotometricInterpretation", ""))
    if secondary and not photometric.startswith("MONOCHROME"):
        raise ImageRejected(f"This secondary capture is in colour ({photometric}), not a radiograph.")


SEXES = ("M", "F", "O")  # PS3.3 C.7.1.1 Patient Sex: M, F or O (or empty)
VIEWS = ("PA", "AP")  # the projections judged
ACCESSION_MAX = 16  # Accession Number is SH: at most 16 characters, no backslash or control characters


def header_of(ds: Dataset) -> DicomHeader:
    """The header's values, each optional one checked against its value set (PS3.3, PS3.5): a value outside it
    (PatientSex "FM", a birth date 19990231, an accession of 30 characters) is left out with a note (the header's
    `dropped`, logged here and recorded with the upload), never kept to fail the results' send later."""
    dropped: list[str] = []
    sex = _member(ds, "PatientSex", SEXES, dropped)
    view = str(ds.get("ViewPosition", "")).strip().upper()  # defined terms, not a value set: others are no view of ours
    birth_date = str(ds.get("PatientBirthDate", "")).strip()
    if birth_date and _date(birth_date) is None:
        dropped.append(f"PatientBirthDate {birth_date[:20]!r} is not a date (YYYYMMDD)")
        birth_date = ""
    accession = str(ds.get("AccessionNumber", "")).strip()
    if len(accession) > ACCESSION_MAX or any(c == "\\" or ord(c) < 32 for c in accession):
        dropped.append(f"AccessionNumber {accession[:20]!r} is not a short string (SH: 16 characters)")
        accession = ""
    if dropped:
        logger.info("DICOM %s: left out %s", ds.get("SOPInstanceUID", "?"), "; ".join(dropped))
    return DicomHeader(
        study_uid=str(ds.get("StudyInstanceUID", "")),
        series_uid=str(ds.get("SeriesInstanceUID", "")),
        sop_uid=str(ds.get("SOPInstanceUID", "")),
        sop_class_uid=str(ds.get("SOPClassUID", "")),
        modality=str(ds.get("Modality", "")),
        patient_id=str(ds.get("PatientID", "")).strip(),
        patient_name=str(ds.get("PatientName", "")).strip(),
        birth_date=birth_date,
        accession=accession,
        age_years=age_years(ds),
        sex=sex,
        view_position=view if view in VIEWS else "",
        dropped=tuple(dropped),
    )


def _member(ds: Dataset, keyword: str, allowed: tuple[str, ...], dropped: list[str]) -> str:
    """The attribute's value when it is one of `allowed` (a whole value, not a substring: "FM" is not "F" or "M");
    empty, with a note in `dropped`, when it is something else."""
    value = str(ds.get(keyword, "")).strip().upper()
    if value and value not in allowed:
        dropped.append(f"{keyword} {value[:20]!r} is not one of {', '.join(allowed)}")
        return ""
    return value


AGE_UNITS = {"Y": 1.0, "M": 12.0, "W": 52.1775, "D": 365.25}


def age_years(ds: Dataset) -> int | None:
    """Whole years from PatientAge ("005Y", "018M", "010W", "020D"), else from PatientBirthDate and StudyDate."""
    match = re.fullmatch(r"(\d{1,3})([YMWD])", str(ds.get("PatientAge", "")).strip().upper())
    if match:
        return int(int(match.group(1)) / AGE_UNITS[match.group(2)])
    born, seen = _date(ds.get("PatientBirthDate")), _date(ds.get("StudyDate") or ds.get("AcquisitionDate"))
    if born is None or seen is None or seen < born:
        return None
    return seen.year - born.year - ((seen.month, seen.day) < (born.month, born.day))


def _date(value: Any) -> date | None:
    text = str(value or "").strip()
    if not re.fullmatch(r"\d{8}", text):
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _decode_pixels(ds: Dataset, max_pixels: int) -> DecodedImage:
    rows, cols = _int(ds.get("Rows")) or 0, _int(ds.get("Columns")) or 0
    check_size(cols, rows, max_pixels)
    bits = _int(ds.get("BitsAllocated")) or 0
    if bits not in (8, 16):
        raise ImageRejected(f"{bits}-bit DICOM pixels are not supported; 8 to 16 bits are.")
    try:
        arr = ds.pixel_array
    except Exception as exc:  # a decoder plug-in missing, or corrupt compressed data: both are this file's fault
        syntax = ds.file_meta.get("TransferSyntaxUID", "unknown")
        name = getattr(syntax, "name", str(syntax))
        logger.info("DICOM pixel data (%s) not decoded: %s", name, exc)  # the decoder's words are for the log only
        raise ImageRejected(
            f"The DICOM pixel data cannot be decoded ({name}): it is corrupt, cut short, or in an encoding this "
            "service does not read."
        ) from exc
    if arr.ndim == 3:  # a grayscale secondary capture has one sample; colour ones were refused unless photometric lies
        return DecodedImage(check_not_blank(_rgb_to_gray(arr)), chroma_of(arr.astype(np.uint8)), cols, rows, "DICOM")
    return DecodedImage(check_not_blank(to_gray8(ds, arr)), 0.0, cols, rows, "DICOM")


def _rgb_to_gray(arr: np.ndarray) -> np.ndarray:
    return np.asarray(arr.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32), np.uint8)


def to_gray8(ds: Dataset, arr: np.ndarray) -> np.ndarray:
    """(H, W) stored values -> (H, W) uint8 as shown: Modality LUT, VOI LUT or window (else the percentile
    window of 16-bit PNGs), then MONOCHROME1 inverted so that bone is bright."""
    values = np.asarray(apply_modality_lut(arr, ds), dtype=np.float64)
    if "VOILUTSequence" in ds:
        gray8 = _voi_lut(values, ds)
    elif "WindowCenter" in ds and "WindowWidth" in ds:
        gray8 = _window(values, _first(ds.WindowCenter), _first(ds.WindowWidth))
    elif int(ds.get("BitsStored", 16)) <= 8 and values.min() >= 0 and values.max() <= 255:
        gray8 = values.astype(np.uint8)  # 8-bit without a window: as an 8-bit PNG, shown as stored
    else:
        gray8 = window_to_uint8(values.astype(np.float32))  # as a 16-bit PNG
    low, high = float(values.min()), float(values.max())
    if high > low and int(gray8.max()) - int(gray8.min()) < MIN_CONTRAST:
        # a header window or VOI LUT that leaves one grey level of pixels that have contrast is wrong for them:
        # the percentile window, as for a 16-bit PNG, instead of refusing the radiograph as blank
        gray8 = window_to_uint8(values.astype(np.float32))
    if str(ds.get("PhotometricInterpretation", "")) == "MONOCHROME1":
        gray8 = 255 - gray8
    return gray8


def _voi_lut(values: np.ndarray, ds: Dataset) -> np.ndarray:
    """The first VOI LUT (PS3.3 C.11.2) onto 0-255. Looked up here, not with pydicom's apply_voi, which indexes an
    8-bit LUT with 8-bit integers (pydicom 3.0: inputs above 255 wrap around)."""
    item = ds.VOILUTSequence[0]
    entries, first, bits = (int(v) for v in item.LUTDescriptor)
    entries = entries or 65536
    raw = item.LUTData
    if isinstance(raw, bytes):  # OW: the dataset's byte order, 16 bits an entry
        little = ds.file_meta.TransferSyntaxUID.is_little_endian if "file_meta" in ds.__dict__ else True
        lut = np.frombuffer(raw, dtype="<u2" if little else ">u2")[:entries]
    else:
        lut = np.asarray(raw if isinstance(raw, list | pydicom.multival.MultiValue) else [raw], dtype=np.int64)
    index = np.clip(np.rint(values).astype(np.int64) - first, 0, len(lut) - 1)
    out = lut[index].astype(np.float64) / (2 ** (bits or 16) - 1) * 255.0
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _first(value: Any) -> float:
    return float(value[0]) if isinstance(value, pydicom.multival.MultiValue) else float(value)


def _window(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """The DICOM linear window (PS3.3 C.11.2.1.2.1) onto 0-255."""
    width = max(width, 1.0)
    scaled = ((values - (center - 0.5)) / (width - 1.0) + 0.5) * 255.0 if width > 1 else (values > center) * 255.0
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
