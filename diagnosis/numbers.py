"""Figures in the active locale's format, for sentences built in Python (templates use floatformat)."""

from __future__ import annotations

from django.utils.formats import number_format


def percent(share: float, places: int = 0) -> str:
    """A share (0-1) as a percentage with `places` decimals, as Python's % format writes it ("69.6%"), with the
    locale's decimal separator ("69,6%" in Vietnamese)."""
    return f"{number_format(round(share * 100, places), decimal_pos=places)}%"
