"""The upload page in Vietnamese: the model card's population, which the page prints, in the page's language."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.diagnosis.vi import vi_catalog

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("vi_catalog")]
__all__ = ["vi_catalog"]


def test_the_upload_page_names_the_population_in_the_browsers_language(alice) -> None:
    client = Client()
    client.force_login(alice)
    english = client.get("/upload/", HTTP_ACCEPT_LANGUAGE="en")
    vietnamese = client.get("/upload/", HTTP_ACCEPT_LANGUAGE="vi")
    assert "frontal chest radiographs of children aged 1 to 5 years" in english.content.decode()
    page = vietnamese.content.decode()
    assert "children aged 1 to 5" not in page and "trẻ từ 1 đến 5 tuổi" in page
    population = vietnamese.context["population"]
    assert "trẻ từ 1 đến 5 tuổi" in population.description
    assert (population.min_age_years, population.max_age_years) == (1, 5)
