"""Zip entries: acceptable ones are yielded, refused ones reported through the callback, in archive order."""

import io

import pytest

from diagnosis import archives
from tests.factories import zip_of


def test_entries_are_yielded_and_problems_reported_in_order() -> None:
    refused: list[tuple[str, str]] = []
    buf = zip_of({"a.png": b"a" * 10, "../evil.png": b"x", "inner.zip": b"z", "big.png": b"b" * 100, "c.png": b"c"})
    got = [(e.name, e.stream.read()) for e in archives.entries(buf, 50, 10_000, lambda n, m: refused.append((n, m)))]
    assert got == [("a.png", b"a" * 10), ("c.png", b"c")]
    assert [name for name, _ in refused] == ["../evil.png", "inner.zip", "big.png"]
    assert "unsafe path" in refused[0][1] and "nested" in refused[1][1] and "limit" in refused[2][1]


def test_the_total_size_limit_refuses_what_comes_after_it() -> None:
    refused: list[str] = []
    buf = zip_of({"1.png": b"1" * 40, "2.png": b"2" * 40, "3.png": b"3" * 10})
    got = [e.name for e in archives.entries(buf, 100, 60, lambda n, m: refused.append(n))]
    assert got == ["1.png", "3.png"] and refused == ["2.png"]


def test_not_a_zip_is_one_error_for_the_whole_upload() -> None:
    with pytest.raises(archives.BadArchive, match="not a valid zip"):
        list(archives.entries(io.BytesIO(b"not a zip"), 100, 100, lambda n, m: None))
