"""The page Model at this site: reviewers read the figures and the proposal; the admin adopts and reverts there;
the study page and the report say which point a result was judged at."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils.html import escape

from diagnosis.models import OperatingPoint, Role
from diagnosis.site import operating_points
from diagnosis.site.wording import NOT_VALIDATED as SAID
from tests import factories
from tests.factories import make_member

pytestmark = pytest.mark.django_db


def test_a_reviewer_reads_the_figures_the_proposal_and_the_charts(clinic_a: Any, client: Any) -> None:
    factories.separable_site(make_member("ada", clinic_a, Role.ADMIN))
    client.force_login(make_member("rita", clinic_a, Role.REVIEWER))
    page = client.get("/site/").content.decode()
    assert "Not yet validated at this site" in page and 'id="proposal"' in page
    assert page.count("<polyline") == 2  # the acceptance set's ROC and reliability; no verification sample yet
    assert 'id="adopt-form"' not in page  # reviewers read; only the admin adopts


def test_the_admin_adopts_and_reverts_on_the_page(clinic_a: Any, client: Any) -> None:
    admin = make_member("ada", clinic_a, Role.ADMIN)
    factories.separable_site(admin)
    client.force_login(admin)
    answer = client.post("/site/adopt/", {"target_sensitivity": "0.95", "reason": "our acceptance set"}, follow=True)
    assert "Operating point version 1 adopted" in answer.content.decode()
    assert OperatingPoint.objects.get().reason == "our acceptance set"
    answer = client.post("/site/revert/", {"reason": "undo"}, follow=True)
    assert "model card" in answer.content.decode() and OperatingPoint.objects.get().retired_at is not None


def test_the_page_has_no_duplicate_ids_once_a_point_is_in_force(clinic_a: Any, client: Any) -> None:
    """From a browser pass: the adopt and the revert forms both rendered their reason as id_reason."""
    import re
    from collections import Counter

    admin = make_member("ada", clinic_a, Role.ADMIN)
    factories.separable_site(admin)
    operating_points.adopt(user=admin, target_sensitivity=0.95, reason="ours")
    client.force_login(admin)
    page = client.get("/site/").content.decode()
    assert 'id="revert-form"' in page
    assert [i for i, n in Counter(re.findall(r'\sid="([^"]+)"', page)).items() if n > 1] == []


def test_adopting_without_a_reason_or_evidence_changes_nothing(clinic_a: Any, client: Any) -> None:
    admin = make_member("ada", clinic_a, Role.ADMIN)
    client.force_login(admin)
    assert (
        "Not adopted"
        in client.post("/site/adopt/", {"target_sensitivity": "0.95", "reason": "x"}, follow=True).content.decode()
    )
    factories.separable_site(admin)
    assert "reason" in client.post("/site/adopt/", {"target_sensitivity": "0.95"}, follow=True).content.decode()
    assert not OperatingPoint.objects.exists()


NOT_VALIDATED = escape(SAID)


def test_results_say_whether_their_point_was_validated_here(clinic_a: Any, client: Any) -> None:
    admin = make_member("ada", clinic_a, Role.ADMIN)
    before = factories.judged_study(admin)
    client.force_login(admin)
    assert NOT_VALIDATED in client.get(f"/studies/{before.pk}/").content.decode()
    assert NOT_VALIDATED in client.get(f"/studies/{before.pk}/report/").content.decode()
    factories.separable_site(admin)
    row = operating_points.adopt(user=admin, target_sensitivity=0.95, reason="ours")
    before.result.operating_point = row
    before.result.save()
    page = client.get(f"/studies/{before.pk}/").content.decode()
    assert escape("this site's own operating point (version 1") in page and NOT_VALIDATED not in page
