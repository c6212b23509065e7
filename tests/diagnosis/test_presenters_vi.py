"""The study's result in Vietnamese: the label, the margin to the threshold and the threshold with a decimal comma,
the reviewer's choices; the same in English, as before."""

from __future__ import annotations

import pytest
from django.utils import translation

from diagnosis import presenters
from diagnosis.models import Label
from tests.diagnosis.vi import vi_catalog

pytestmark = pytest.mark.usefixtures("vi_catalog")
__all__ = ["vi_catalog"]


def test_the_label_in_vietnamese() -> None:
    with translation.override("vi"):
        assert str(Label.PNEUMONIA.label) == "Viêm phổi"
        assert str(Label.NORMAL.label) == "Bình thường"
    assert str(Label.PNEUMONIA.label) == "Pneumonia"


def test_borderline_text_with_a_decimal_comma() -> None:
    with translation.override("vi"):
        scale = presenters.probability_scale(0.66, 0.696)
    assert scale["borderline"]
    assert scale["threshold_text"] == "69,6 %"
    assert scale["margin_text"] == "3,6 điểm dưới"
    assert scale["relation_text"] == "3,6 điểm dưới ngưỡng quyết định 69,6 %"


def test_english_is_as_before() -> None:
    with translation.override("en"):
        scale = presenters.probability_scale(0.66, 0.696)
        assert presenters.probability_scale(0.5, 0.5)["margin_text"] == "at"
        assert presenters.probability_scale(0.5, 0.5)["threshold_text"] == "50 %"
    assert (scale["threshold_text"], scale["margin_text"]) == ("69.6 %", "3.6 points below")
    assert scale["relation_text"] == "3.6 points below the decision threshold 69.6 %"


def test_the_reviewers_choices_and_the_population_warning() -> None:
    with translation.override("vi"):
        assert presenters.decisions("PNEUMONIA") == {
            "agree": "Đồng ý → Viêm phổi",
            "disagree": "Không đồng ý → Bình thường",
        }
        warning = presenters.population_warning(40)
    assert warning.startswith("Ngoài nhóm đối tượng dự kiến của mô hình: bệnh nhân 40 tuổi")
    assert "trẻ từ 1 đến 5 tuổi" in warning  # the shipped card's population, translated too
