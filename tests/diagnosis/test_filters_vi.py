"""The study lists' sort choices in the request's language: django-filter words each descending choice with its own
"%s (descending)" (its catalog has no Vietnamese) once, when the list's filters are declared; ours stays lazy."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import translation

from diagnosis.filters import HistoryPageFilter, WorklistFilter
from tests.diagnosis.vi import vi_catalog

pytestmark = pytest.mark.usefixtures("vi_catalog")
__all__ = ["vi_catalog"]


def _labels(filterset: type[HistoryPageFilter] | type[WorklistFilter]) -> list[str]:
    return [str(label) for _, label in filterset().filters["sort"].field.choices]


def test_the_sort_choices_follow_the_active_language() -> None:
    with translation.override("en"):
        english = _labels(WorklistFilter)
    with translation.override("vi"):
        vietnamese = _labels(WorklistFilter)
        history = _labels(HistoryPageFilter)
    assert english[1:] == [
        "P(pneumonia)",
        "P(pneumonia) (descending)",
        "Upload time",
        "Upload time (descending)",
        "Patient reference",
        "Patient reference (descending)",
    ]
    assert "P(viêm phổi) (giảm dần)" in vietnamese and "Mã bệnh nhân (giảm dần)" in vietnamese
    assert not [label for label in vietnamese + history if "descending" in label]


@pytest.mark.django_db
def test_the_worklist_page_offers_them_in_vietnamese(alice) -> None:
    client = Client()
    client.force_login(alice)
    assert "Upload time (descending)" in client.get("/worklist/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    page = client.get("/worklist/", HTTP_ACCEPT_LANGUAGE="vi").content.decode()
    assert "(giảm dần)" in page and "(descending)" not in page
