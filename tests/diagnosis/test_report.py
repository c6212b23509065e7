"""The printable report shows the Grad-CAM heatmap and overlay for a pneumonia call only: the model draws no map for
a normal one, and an image there would be read as one."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from diagnosis.models import Label
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("label", "probability", "drawn"), [(Label.NORMAL, 0.1, False), (Label.PNEUMONIA, 0.9, True)])
def test_the_report_draws_the_heatmap_only_for_a_pneumonia_call(
    alice: User, label: str, probability: float, drawn: bool
) -> None:
    study = factories.judged_study(alice, label, probability)
    client = Client()
    client.force_login(alice)
    page = client.get(reverse("diagnosis:study_report", args=[study.pk])).content.decode()
    heatmap = reverse("diagnosis:study_file", args=[study.pk, "heatmap"])
    overlay = reverse("diagnosis:study_file", args=[study.pk, "overlay"])
    assert ('alt="Grad-CAM heatmap"' in page, heatmap in page, overlay in page) == (drawn, drawn, drawn)
    assert 'alt="Radiograph"' in page
