"""Template filters that read the one declaration of a rule instead of restating it in a template."""

from __future__ import annotations

import math
from typing import Any

from django import template

from diagnosis.presenters import intended_population, is_borderline
from diagnosis.presenters import percent as percent_text
from worker.ml import site

register = template.Library()


@register.filter
def outside_population(age_years: int | None) -> bool:
    return intended_population().excludes(age_years)


@register.filter
def borderline(result: Any) -> bool:
    """A study's result (or None) flagged borderline by presenters.is_borderline, for the lists."""
    return result is not None and is_borderline(result.probability, result.threshold)


@register.filter
def percent(probability: float | None) -> str:
    return "—" if probability is None or math.isnan(probability) else percent_text(probability)


@register.filter
def figures(perf: site.Performance) -> list[tuple[str, site.Proportion]]:
    """A local performance's proportions, in the order the site page lists them."""
    return [
        ("Sensitivity", perf.sensitivity),
        ("Specificity", perf.specificity),
        ("PPV", perf.ppv),
        ("NPV", perf.npv),
        ("Prevalence", perf.prevalence),
    ]
