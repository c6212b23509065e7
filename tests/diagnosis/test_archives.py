"""Zip entries: acceptable ones are yielded, refused ones reported through the callback, in archive order."""

import io

import pytest

from diagnosis import archives
from tests.factories import zip_of


def test_entries_are_yielded_and_problems_reported_in_order() -> None:
    refused: list[tuple[str, str]] = []
    buf = zip_of({"a.png": b"a" * 10, "../evil.png": b"x", "inner.zip": b"z", "big.png": b"b" * 100, "c.png": b"c"})
    got = [(e.name, e.stream.read()) for e in archives.entries(buf, 50, 10_000, lambda n, m: refused.append((n, m)), 5)]
    assert got == [("a.png", b"a" * 10), ("c.png", b"c")]
    assert [name for name, _ in refused] == ["../evil.png", "inner.zip", "big.png"]
    assert "unsafe path" in refused[0][1] and "nested" in refused[1][1]
    assert refused[2][1] == "the entry is 100 bytes; the limit is 50 bytes (0 MB) (uncompressed)."


def test_an_archive_of_more_files_than_the_limit_is_refused_whole_before_any_is_read() -> None:
    """From a red-team pass: 20,000 one-byte entries were each read and refused, a 1.5 MB answer of errors."""
    buf = zip_of({f"{i}.png": b"x" for i in range(6)} | {"dir/": b"", "__MACOSX/._0.png": b"m"})
    with pytest.raises(archives.BadArchive, match="holds 6 files; the limit is 5: split it"):
        list(archives.entries(buf, 100, 10_000, lambda n, m: None, 5))
    assert len(list(archives.entries(buf, 100, 10_000, lambda n, m: None, 6))) == 6  # folders and __MACOSX: not files


def test_the_total_size_limit_refuses_what_comes_after_it() -> None:
    refused: list[str] = []
    buf = zip_of({"1.png": b"1" * 40, "2.png": b"2" * 40, "3.png": b"3" * 10})
    got = [e.name for e in archives.entries(buf, 100, 60, lambda n, m: refused.append(n), 5)]
    assert got == ["1.png", "3.png"] and refused == ["2.png"]


def test_not_a_zip_is_one_error_for_the_whole_upload() -> None:
    with pytest.raises(archives.BadArchive, match="not a valid zip"):
        list(archives.entries(io.BytesIO(b"not a zip"), 100, 100, lambda n, m: None, 5))


def test_an_archive_declaring_far_more_entries_than_files_allowed_is_refused_before_its_directory_is_read(
    monkeypatch,
) -> None:
    """From a review: ZipFile builds an object for every entry of the directory before the files can be counted."""
    buf = zip_of({f"{i}.png": b"x" for i in range(9)})
    parsed: list[int] = []
    monkeypatch.setattr(archives.zipfile, "ZipFile", lambda *a, **k: parsed.append(1))
    with pytest.raises(archives.BadArchive, match="holds 9 entries; the limit is 2 files"):
        list(archives.entries(buf, 100, 10_000, lambda n, m: None, 2))  # 9 > 4 x 2
    assert parsed == [] and buf.tell() == 0
