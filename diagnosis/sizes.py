"""Sizes in messages for people: megabytes, or bytes where megabytes would hide the difference (figures in the
active locale's format: "30.5 MB" in English, "30,5 MB" in Vietnamese)."""

from __future__ import annotations

from django.utils.formats import number_format
from django.utils.translation import gettext as _


def megabytes(n: float) -> str:
    """n bytes for a person: "30 MB", "4,096 MB", "30.5 MB"."""
    mb = n / 2**20
    if mb >= 100:
        return f"{number_format(round(mb), force_grouping=True)} MB"
    tenths = round(mb, 1)
    whole = tenths == int(tenths)
    return (
        f"{number_format(int(tenths) if whole else tenths, decimal_pos=None if whole else 1, force_grouping=True)} MB"
    )


def size_over(size: int, limit: int) -> str:
    """ "X; the limit is Y" for a size over a limit, in bytes where megabytes would show the two the same."""
    if megabytes(size) == megabytes(limit):
        return _("%(size)s bytes; the limit is %(limit)s bytes (%(megabytes)s)") % {
            "size": number_format(size, force_grouping=True),
            "limit": number_format(limit, force_grouping=True),
            "megabytes": megabytes(limit),
        }
    return _("%(size)s; the limit is %(limit)s") % {"size": megabytes(size), "limit": megabytes(limit)}
