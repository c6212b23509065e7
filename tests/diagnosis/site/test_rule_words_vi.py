"""The site's rules on a Vietnamese page: catalog messages filled from the constants the rules apply, figures with
the decimal comma; in English each reads exactly as the constant the API, the audit and the report keep."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
from django.test import Client
from django.utils import translation

from diagnosis.models import Role
from diagnosis.site import monitoring, operating_points, rule_words
from tests import factories
from tests.diagnosis.vi import vi_catalog
from tests.factories import make_member
from worker.ml import drift, site

pytestmark = pytest.mark.usefixtures("vi_catalog")
__all__ = ["vi_catalog"]

CONSTANTS = {
    "proposal": site.PROPOSAL_RULE,
    "output": drift.DRIFT_RULES,
    "input": monitoring.INPUT_RULES,
    "agreement": monitoring.AGREEMENT_RULES,
}


def test_in_english_each_rule_is_its_constant() -> None:
    with translation.override("en"):
        assert rule_words.rules() == CONSTANTS


def test_in_vietnamese_each_rule_is_translated_with_its_figures() -> None:
    with translation.override("vi"):
        rules = rule_words.rules()
    assert set(rules) == set(CONSTANTS)
    for name, text in rules.items():
        assert text != CONSTANTS[name] and "%(" not in text, name
        assert not re.search(r"\b(the|when|with|of|at least)\b", text), (name, text)
    assert "ít nhất 50 ca mỗi loại" in rules["proposal"] and "(0,5 sqrt(t(1 - t)/n)" in rules["proposal"]
    assert "tối đa 0,995" in rules["proposal"]
    assert "“cần xử lý” từ 0,25" in rules["output"] and "ít nhất 0,05" in rules["output"]
    assert "p < 0,01" in rules["output"] and "ít nhất 50 ca chụp gần đây" in rules["output"]
    assert "ít nhất 20 ca chụp" in rules["agreement"] and "hơn 15% số ca đó" in rules["agreement"]


@pytest.mark.django_db
def test_the_site_page_shows_the_rules_in_the_browsers_language(clinic_a: Any) -> None:
    reviewer = make_member("rey", clinic_a, Role.REVIEWER)
    client = Client()
    client.force_login(reviewer)
    vietnamese = client.get("/site/", HTTP_ACCEPT_LANGUAGE="vi").content.decode()
    english = client.get("/site/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    with translation.override("vi"):
        assert rule_words.proposal_rule() in vietnamese and rule_words.agreement_rules() in vietnamese
    assert "From this site's own labelled studies" not in vietnamese and "With at least 20" not in vietnamese
    assert "From this site&#x27;s own labelled studies" in english and "With at least 20 reviewed" in english


@pytest.mark.django_db
def test_too_few_studies_to_propose_say_so_in_vietnamese(clinic_a: Any) -> None:
    admin = make_member("ada", clinic_a, Role.ADMIN)
    factories.site_studies(admin, [1.0] * 3 + [6.0], [0] * 3 + [1])
    with pytest.raises(ValueError) as raised:  # the worker's own words, which the English page gives as before
        site.propose(np.array([1.0] * 3 + [6.0]), np.array([0] * 3 + [1]), 0.95)
    with translation.override("en"):
        assert operating_points.standing(clinic_a).why_not == f"Nothing to propose yet: {raised.value}."
    with translation.override("vi"):
        why = operating_points.standing(clinic_a).why_not
    assert why == "Chưa có đề xuất: cần ít nhất 2 ca chụp mỗi loại (hiện có 1 viêm phổi, 3 bình thường)."
