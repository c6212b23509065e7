import io

import pytest

from diagnosis.validation import UploadError, clean_name, validate_upload
from tests import images


def test_valid_png_and_jpeg() -> None:
    png = validate_upload("a.png", None, io.BytesIO(images.png(400, 300)))
    assert (png.content_type, png.extension, png.width, png.height) == ("image/png", ".png", 400, 300)
    assert len(png.sha256) == 64
    jpg = validate_upload("b.jpeg", None, io.BytesIO(images.jpeg()))
    assert jpg.content_type == "image/jpeg" and jpg.working_copy.display_jpeg[:2] == b"\xff\xd8"  # the preview
    assert jpg.thumbnail_jpeg[:2] == b"\xff\xd8"
    assert jpg.working_copy.model_pgm.startswith(b"P5\n224 224\n") and jpg.working_copy.chroma == 0.0


def test_a_file_over_the_limit_is_refused_before_it_is_read(settings) -> None:
    settings.MAX_UPLOAD_BYTES = 1000

    class Exploding(io.BytesIO):
        def read(self, *args: object) -> bytes:
            raise AssertionError("must not be read")

    with pytest.raises(UploadError, match="limit"):
        validate_upload("big.png", 5000, Exploding())


def test_a_stream_larger_than_announced_is_refused(settings) -> None:
    settings.MAX_UPLOAD_BYTES = 1000
    with pytest.raises(UploadError, match="larger than"):
        validate_upload("liar.png", 10, io.BytesIO(b"x" * 5000))


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"", "empty"), (b"hello world", "not a JPEG or PNG"), (images.jpeg()[:500], "truncated or corrupt")],
)
def test_bad_files_name_the_file_and_the_reason(data: bytes, message: str) -> None:
    with pytest.raises(UploadError, match=message) as info:
        validate_upload("scan.jpg", len(data), io.BytesIO(data))
    assert info.value.file_name == "scan.jpg"
    assert str(info.value).startswith("scan.jpg: ")


def test_clean_name_drops_paths() -> None:
    assert clean_name("../../etc/passwd") == "passwd"
    assert clean_name("C:\\Users\\x\\chest.png") == "chest.png"
    assert clean_name("  ") == "unnamed"
    assert clean_name("a\r\nb\x00.png") == "ab.png"
