"""Sizes in messages for people: megabytes, or bytes where megabytes would hide the difference."""

from __future__ import annotations


def megabytes(n: float) -> str:
    """n bytes for a person: "30 MB", "4,096 MB", "30.5 MB"."""
    mb = n / 2**20
    return f"{mb:,.0f} MB" if mb >= 100 else f"{mb:,.1f}".removesuffix(".0") + " MB"


def size_over(size: int, limit: int) -> str:
    """ "X; the limit is Y" for a size over a limit, in bytes where megabytes would show the two the same."""
    if megabytes(size) == megabytes(limit):
        return f"{size:,} bytes; the limit is {limit:,} bytes ({megabytes(limit)})"
    return f"{megabytes(size)}; the limit is {megabytes(limit)}"
