"""Why a file or a study was refused or failed, in the active language.

The worker and the upload gate (worker.ml) are Django-free: they raise and store English sentences, and a job's
reason is stored as written (the API and the CSV export give it as is). The pages translate it here, at display
time, from its structure: each known sentence is a pattern whose figures are read back and written in the locale's
format ("0.41" reads "0,41" in Vietnamese); a refusal of the gate is told by its code (worker.ml.refusals.code),
with its technical detail translated piece by piece. A sentence not known here is shown as stored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from django.utils.formats import number_format
from django.utils.translation import gettext, gettext_noop

from worker.ml import refusals

# The gate's refusals, by code (the sentences are worker.ml.gate's and worker.ml.polarity's).
CODES = {
    refusals.COLOUR_CODE: gettext_noop(
        "This looks like a colour photograph, not a chest X-ray. Only chest radiographs are judged."
    ),
    refusals.NOT_A_RADIOGRAPH_CODE: gettext_noop(
        "This does not look like a chest X-ray: it may be a photograph, a document or another kind of scan (a CT or MR "
        "slice). Only chest radiographs are judged."
    ),
    refusals.INVERTED_CODE: gettext_noop(
        "This chest X-ray looks inverted (a negative: bones dark, lungs bright). "
        "Export the radiograph with its usual polarity (MONOCHROME2) and upload it again."
    ),
}
TECHNICAL_DETAIL = gettext_noop("Technical detail: %(detail)s.")

# The pieces of a technical detail (joined by "; "). A group named detail* is itself a piece, translated in turn.
DETAILS = (
    gettext_noop("colour saturation %(chroma)s, limit %(limit)s"),
    gettext_noop("feature distance %(distance)s from the training radiographs, limit %(limit)s"),
    gettext_noop("P(inverted) %(p)s"),
    gettext_noop("inverted, %(detail)s (as sent, %(distance)s)"),
    gettext_noop("%(detail)s, but inverted it lies at %(distance)s"),
)

# Whole sentences: the upload gate's (worker.ml.preprocessing, pixels, dicom), then the pipeline's failures. Groups
# named error*, text*, name* are shown as written (an exception's text, a DICOM value); digits are figures.
SENTENCES = (
    gettext_noop("The file is empty."),
    gettext_noop("The file is not a JPEG or PNG image."),
    gettext_noop("The image is truncated or corrupt (its image data ends early: a part of it is missing)."),
    gettext_noop("The image is truncated or corrupt (%(error)s)."),
    gettext_noop("The image is too large to decode safely; the limit is %(megapixels)s megapixels."),
    gettext_noop("The image cannot be read (%(error)s)."),
    gettext_noop("Unsupported image format %(name)s; upload a JPEG, PNG or DICOM file."),
    gettext_noop("The image is too small (%(width)sx%(height)s); at least %(side)sx%(side)s pixels are needed."),
    gettext_noop("The image is too large (%(width)sx%(height)s pixels); the limit is %(megapixels)s megapixels."),
    gettext_noop(
        "The image is %(width)sx%(height)s pixels, more than %(ratio)s times longer than it is wide: a strip or a "
        "crop, not a whole chest radiograph, and it cannot be judged."
    ),
    gettext_noop("The image is blank (every pixel is within %(levels)s grey levels of the others)."),
    gettext_noop("The DICOM file cannot be read (%(error)s)."),
    gettext_noop("This DICOM file is an encapsulated PDF, not an image; send a chest radiograph."),
    gettext_noop("This DICOM file is an encapsulated CDA document, not an image; send a chest radiograph."),
    gettext_noop("This DICOM file is a structured report (SR), not an image; send a chest radiograph."),
    gettext_noop("This DICOM file (no modality) holds no image; it may be truncated."),
    gettext_noop("This DICOM file (%(name)s) holds no image; it may be truncated."),
    gettext_noop(
        "This DICOM file is %(detail)s image (modality %(name)s); only chest radiographs (CR or DX) are judged."
    ),
    gettext_noop("This DICOM file is multi-frame (%(frames)s frames); send a single-frame chest radiograph."),
    gettext_noop("The body part examined is %(name)s, not the chest; only chest radiographs are judged."),
    gettext_noop("This secondary capture is in colour (%(name)s), not a radiograph."),
    gettext_noop("%(bits)s-bit DICOM pixels are not supported; 8 to 16 bits are."),
    gettext_noop(
        "The DICOM pixel data cannot be decoded (%(error)s): it is corrupt, cut short, or in an encoding this "
        "service does not read."
    ),
    gettext_noop("The original image is missing from storage; it cannot be judged."),
    gettext_noop("The original image could not be read: %(error)s"),
    gettext_noop("Processing took longer than %(seconds)s s; it was stopped."),
    gettext_noop("Processing stopped %(attempts)s times without finishing; the image was not judged."),
    gettext_noop("Inference failed: %(error)s"),
)

# What a refused DICOM file is (worker.ml.dicom.MODALITY_NAMES), as the modality sentence names it.
MODALITIES = (
    gettext_noop("a CT"),
    gettext_noop("an MR"),
    gettext_noop("an ultrasound"),
    gettext_noop("a nuclear medicine"),
    gettext_noop("a PET"),
    gettext_noop("a mammography"),
    gettext_noop("an angiography"),
    gettext_noop("a fluoroscopy"),
    gettext_noop("a structured report (SR)"),
    gettext_noop("a document"),
    gettext_noop("a radiotherapy dose"),
    gettext_noop("a radiotherapy structure set"),
    gettext_noop("a radiotherapy plan"),
    gettext_noop("an ECG waveform"),
    gettext_noop("a segmentation"),
    gettext_noop("an 'other' modality"),
    gettext_noop("modality %(name)s"),
)

_PLACEHOLDER = re.compile(r"%\((\w+)\)s")
_NUMBER = re.compile(r"(?:-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?)")


@dataclass(frozen=True)
class Pattern:
    msgid: str
    regex: re.Pattern[str]


def _compile(msgid: str) -> Pattern:
    """The msgid as a pattern: its text literal, each %(name)s a group (a name used twice: the same text again)."""
    out, seen, at = [], set(), 0
    for m in _PLACEHOLDER.finditer(msgid):
        out.append(re.escape(msgid[at : m.start()]))
        name = m.group(1)
        text = name.startswith(("detail", "error", "text", "name"))
        out.append(f"(?P={name})" if name in seen else f"(?P<{name}>{'.+?' if text else _NUMBER.pattern})")
        seen.add(name)
        at = m.end()
    out.append(re.escape(msgid[at:]))
    return Pattern(msgid, re.compile("".join(out), re.DOTALL))


@lru_cache(maxsize=8)
def _patterns(table: tuple[str, ...]) -> tuple[Pattern, ...]:
    return tuple(_compile(m) for m in table)


def figure(text: str) -> str:
    """An English figure ("0.41", "4,096", "22.0") in the active locale's format, with as many decimals."""
    plain = text.replace(",", "")
    places = len(plain.partition(".")[2])
    value = float(plain) if places else int(plain)
    return number_format(value, decimal_pos=places or None, force_grouping="," in text)


def _translate(text: str, table: Iterable[str], nested: tuple[str, ...]) -> str | None:
    """text by the first pattern of `table` it matches, translated; None when none matches."""
    for pattern in _patterns(tuple(table)):
        m = pattern.regex.fullmatch(text)
        if m is None:
            continue
        values = {}
        for name, value in m.groupdict().items():
            if name.startswith("detail"):
                values[name] = _translate(value, nested, nested) or value
            elif name.startswith(("error", "text", "name")):
                values[name] = value
            else:
                values[name] = figure(value)
        return gettext(pattern.msgid) % values if values else gettext(pattern.msgid)
    return None


def _detail(detail: str) -> str:
    return "; ".join(_translate(piece, DETAILS, DETAILS) or piece for piece in detail.split("; "))


def reason_text(reason: str) -> str:
    """A stored or raised reason in the active language (as it is where no pattern knows it)."""
    if not reason:
        return reason
    code = refusals.code(reason)
    if code is not None:
        sentence = gettext(CODES[code])
        detail = refusals.detail(reason)
        return f"{sentence} {gettext(TECHNICAL_DETAIL) % {'detail': _detail(detail)}}" if detail else sentence
    return _translate(reason, SENTENCES, MODALITIES) or reason
