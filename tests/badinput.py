"""Bad inputs, generated: broken zip entries and a corpus of bad files and fields (issue 11).

Each corpus case is sent through the API and the upload page (tests/diagnosis/test_bad_input_corpus.py); each
must end as a 4xx with a reason or as a per-file error, never a 5xx.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from tests import dicoms, images

LOCAL, CENTRAL = b"PK\x03\x04", b"PK\x01\x02"


def stored_zip(entries: dict[str, bytes]) -> bytes:
    """A zip whose entries are stored (not compressed), so their bytes can be found and changed."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _patch(data: bytes, signature: bytes, offset: int, fmt: str, value: int, occurrence: int = -1) -> bytes:
    """Change one header field (struct fmt at offset from the header's signature) of the last (or given) entry."""
    starts = [i for i in range(len(data)) if data.startswith(signature, i)]
    at = starts[occurrence] + offset
    return data[:at] + struct.pack(fmt, value) + data[at + struct.calcsize(fmt) :]


def zip_bad_crc(good: bytes) -> bytes:
    data = stored_zip({"good.png": good, "bad-crc.png": good})
    at = data.rfind(good) + len(good) // 2
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]


def zip_declared_size_too_small(good: bytes) -> bytes:
    data = stored_zip({"good.png": good, "short.png": good})
    for signature, offset in ((CENTRAL, 24), (LOCAL, 22)):
        data = _patch(data, signature, offset, "<I", len(good) // 2)
    return data


def zip_local_name_differs(good: bytes) -> bytes:
    data = stored_zip({"good.png": good, "named.png": good})
    at = data.rfind(LOCAL) + 30
    return data[:at] + b"other.png" + data[at + len("named.png") :]


def zip_method_99(good: bytes) -> bytes:
    data = stored_zip({"good.png": good, "aes.png": good})
    for signature, offset in ((CENTRAL, 10), (LOCAL, 8)):
        data = _patch(data, signature, offset, "<H", 99)
    return data


def zip_truncated_deflate(good: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("good.png", good)
        zf.writestr("deflated.png", bytes(range(256)) * 64)
    data = buf.getvalue()
    at = data.rfind(LOCAL) + 30 + len("deflated.png") + 10
    return data[:at] + b"\xff" * 40 + data[at + 40 :]


BROKEN_ZIPS: dict[str, Callable[[bytes], bytes]] = {
    "bad CRC-32": zip_bad_crc,
    "declared size smaller than the data": zip_declared_size_too_small,
    "local-header name differs from the central directory": zip_local_name_differs,
    "compression method 99": zip_method_99,
    "corrupt deflate stream": zip_truncated_deflate,
}


@dataclass(frozen=True)
class Case:
    """One bad submission: files (name -> bytes) in 'images' or one zip in 'archive', plus form fields."""

    name: str
    files: dict[str, bytes] = field(default_factory=dict)
    archive: bytes | None = None
    fields: dict[str, str] = field(default_factory=dict)
    page: bool = True  # also sent through the upload page (the page takes no zip)
    # A file that decoders read whole despite a defect (trailing junk, no end marker) may become a study: the
    # worker judges it (or rejects it with a reason); all that is required of it is no 5xx.
    may_store: bool = False


def _png_variants(good: bytes) -> dict[str, bytes]:
    ihdr_end = 8 + 25
    big = struct.pack(">II", 100_000, 100_000)
    bomb = good[:16] + big + good[24:29]
    bomb += struct.pack(">I", zlib.crc32(bomb[12:29]) & 0xFFFFFFFF) + good[ihdr_end:]
    return {
        "empty": b"",
        "one byte": b"\x89",
        "png signature only": good[:8],
        "png header only": good[:33],
        "png truncated at 100 bytes": good[:100],
        "png truncated at half": good[: len(good) // 2],
        "png missing IEND": good[:-12],
        "png with a flipped byte in IDAT": good[:60] + bytes([good[60] ^ 0xFF]) + good[61:],
        "png decompression bomb (100000x100000 header)": bomb,
        "png zero width": good[:16] + struct.pack(">I", 0) + good[20:],
        "jpeg SOI only": b"\xff\xd8",
        "jpeg truncated": images.jpeg()[:200],
        "jpeg garbage after SOI": b"\xff\xd8\xff" + bytes(range(256)) * 4,
        "gif": b"GIF89a" + b"\0" * 40,
        "bmp": b"BM" + b"\0" * 60,
        "pdf": b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n",
        "html": b"<html><script>alert(1)</script></html>",
        "svg with script": b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        "text": b"hello, this is not an image\n",
        "zip renamed to png": stored_zip({"a.png": good}),
        "random bytes": np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
        "all zeros": b"\0" * 4096,
        "utf-16 text": "not an image".encode("utf-16"),
        "elf binary": b"\x7fELF" + b"\0" * 60,
        "png then junk": good + b"\0" * 1000,
    }


def corpus() -> list[Case]:
    """At least 60 bad submissions, each with a good file beside the bad one where that makes sense."""
    good = images.png()
    cases: list[Case] = []
    tolerated = {"png missing IEND", "png then junk"}
    for what, data in _png_variants(good).items():
        ok = what in tolerated
        cases.append(Case(f"file: {what}", {"bad.png": data}, may_store=ok))
        cases.append(
            Case(f"file among good ones: {what}", {"a.png": good, "bad.png": data, "c.png": good}, may_store=ok)
        )
    names = {
        "name with path traversal": "../../etc/passwd.png",
        "name with NUL": "evil\x00.png",
        "name with control characters": "a\x1b[31m\r\n.png",
        "name 1000 characters": "x" * 1000 + ".png",
        "name with html": "<img src=x onerror=alert(1)>.png",
        "name without a stem": ".png",
    }
    for what, name in names.items():
        cases.append(Case(f"file {what}", {name: b"not an image"}))
    for what, build in BROKEN_ZIPS.items():
        cases.append(Case(f"zip: {what}", archive=build(good), page=False))
    cases += [
        Case("zip: not a zip", archive=b"PK\x05\x06" + b"\0" * 18, page=False),
        Case("zip: empty file", archive=b"", page=False),
        Case("zip: only a directory", archive=stored_zip({"dir/": b""}), page=False),
        Case("zip: path traversal entry", archive=stored_zip({"../x.png": good}), page=False),
        Case("zip: nested zip", archive=stored_zip({"in.zip": stored_zip({"a.png": good})}), page=False),
    ]
    fields = {
        "age not a number": {"age_years": "ten"},
        "age negative": {"age_years": "-1"},
        "age huge": {"age_years": "99999999999999999999"},
        "sex invalid": {"sex": "X"},
        "projection invalid": {"projection": "LAT"},
        "patient ref too long": {"patient_ref": "p" * 65},
        "note too long": {"clinical_note": "n" * 2001},
        "patient ref with NUL": {"patient_ref": "a\x00b"},
    }
    for what, values in fields.items():
        cases.append(Case(f"field: {what}", {"a.png": good}, fields=values))
    cases.append(Case("no files at all", {}))
    # Issue 28: text a spreadsheet would run after a `;` is stored as typed; the CSV exports mark it as text
    # (tests/diagnosis/test_csv_formulas.py).
    formulas = {"patient ref a formula after ;": "patient_ref", "note a formula after ;": "clinical_note"}
    for what, name in formulas.items():
        cases.append(Case(f"field: {what}", {"a.png": good}, fields={name: "x;=1+1"}, may_store=True))
    # Issue 28: invisible format characters (Cf) make NORTH\u200b-P1 look like NORTH-P1: refused.
    invisible = {
        "patient ref with a zero-width space": {"patient_ref": "NORTH\u200b-P1"},
        "patient ref with a right-to-left override": {"patient_ref": "NORTH-\u202e1P"},
        "note with a zero-width space": {"clinical_note": "see\u200b prior"},
        "note with a right-to-left override": {"clinical_note": "left \u202eright"},
    }
    for what, values in invisible.items():
        cases.append(Case(f"field: {what}", {"a.png": good}, fields=values))
    # Issue 28: a JPEG with a page appended, named as a page: stored and served as poly.jpg (test_views.py).
    polyglot = images.jpeg() + b"<html><script>alert(1)</script></html>"
    cases.append(Case("file: jpeg with html appended, named poly.html", {"poly.html": polyglot}, may_store=True))
    # Issue 28: DICOM header values outside their value sets are left out with a note (test_pacs_send.py), and an
    # instance sent twice is one study (test_dicom_listener.py).
    for sex in ("FM", "MO", "FMO"):
        bad_sex = dicoms.radiograph(images.chest_like(), PatientSex=sex, PatientBirthDate="2020-1-1")
        cases.append(Case(f"file: dicom with PatientSex {sex}", {"sex.dcm": bad_sex}, may_store=True))
    instance = dicoms.radiograph(images.chest_like())
    cases.append(Case("files: one dicom instance twice", {"one.dcm": instance, "again.dcm": instance}, may_store=True))
    return cases


def stow_corpus() -> dict[str, tuple[str, bytes]]:
    """Issue 28's bad STOW-RS bodies (name -> (Content-Type, body)): each is refused with a reason, stores
    nothing, and is never a 5xx (tests/diagnosis/test_bad_input_corpus.py)."""
    html = b"<!DOCTYPE html><html><script>alert(1)</script></html>"
    content_type, _ = dicoms.stow_body(b"")
    return {
        "jpeg as an application/dicom part": dicoms.stow_body(images.jpeg()),
        "png as an application/dicom part": dicoms.stow_body(images.png()),
        "html as an application/dicom part": dicoms.stow_body(html),
        "a text/html part": dicoms.stow_body((html, "text/html")),
        "a part that does not end": (content_type, b"--stow-boundary-42\r\n\r\n" + images.jpeg()),
        "headers that do not end": (content_type, b"--stow-boundary-42\r\n" + b"X-A: b\r\n" * 4000),
        "a nested multipart part": dicoms.stow_body((b"--x--", "multipart/mixed; boundary=x")),
        "no parts, only the close delimiter": (content_type, b"--stow-boundary-42--\r\n"),
    }
