"""Template filters that read the one declaration of a rule instead of restating it in a template."""

from __future__ import annotations

from django import template

from diagnosis.presenters import intended_population
from diagnosis.presenters import percent as percent_text

register = template.Library()


@register.filter
def outside_population(age_years: int | None) -> bool:
    return intended_population().excludes(age_years)


@register.filter
def percent(probability: float | None) -> str:
    return "—" if probability is None else percent_text(probability)
