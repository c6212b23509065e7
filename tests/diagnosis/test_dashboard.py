from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from diagnosis import charts, reviews, selectors
from diagnosis.models import Label, Role, Study
from tests import factories
from tests.factories import make_member

pytestmark = pytest.mark.django_db


def test_agreement_against_reviewers_final_labels(alice, bob, clinic_a) -> None:
    reviewer = make_member("rita", clinic_a, Role.REVIEWER)
    P, N = Label.PNEUMONIA, Label.NORMAL
    # (model label, reviewer agrees?) -> tp, tp, fp (model P, reviewer N), tn, fn (model N, reviewer P)
    for label, agrees in [(P, True), (P, True), (P, False), (N, True), (N, False)]:
        reviews.review_study(reviewer, factories.judged_study(alice, label), agrees=agrees, note="")
    factories.judged_study(alice, P)  # judged, not reviewed
    factories.study(alice)  # not judged yet
    factories.judged_study(bob, P)  # another clinic: not counted
    board = selectors.dashboard(alice)
    a = board.agreement
    assert (a.tp, a.fp, a.tn, a.fn) == (2, 1, 1, 1)
    assert a.accuracy == pytest.approx(3 / 5)
    assert a.sensitivity == pytest.approx(2 / 3)
    assert a.specificity == pytest.approx(1 / 2)
    assert (board.studies, board.judged, board.pneumonia, board.reviewed) == (7, 6, 4, 5)
    assert board.positive_rate == pytest.approx(4 / 6) and board.review_coverage == pytest.approx(5 / 6)


def test_counts_per_day_include_empty_days(alice) -> None:
    old = factories.judged_study(alice, Label.NORMAL)
    Study.objects.filter(pk=old.pk).update(created=timezone.now() - timedelta(days=3))
    factories.judged_study(alice, Label.PNEUMONIA)
    factories.judged_study(alice, Label.PNEUMONIA)
    days = selectors.dashboard(alice, days=7).days
    assert len(days) == 7 and days[-1].day == timezone.localdate()
    assert (days[-1].pneumonia, days[-1].normal) == (2, 0)
    assert (days[-4].normal, days[-4].pneumonia) == (1, 0)
    assert sum(d.total for d in days) == 3


def test_empty_clinic_has_no_rates_not_a_division_by_zero(alice, client) -> None:
    board = selectors.dashboard(alice)
    assert board.positive_rate is None and board.agreement.accuracy is None
    client.force_login(alice)
    assert client.get(reverse("diagnosis:dashboard")).status_code == 200


def test_dashboard_page_draws_a_bar_per_day(alice, client) -> None:
    factories.judged_study(alice, Label.PNEUMONIA)
    client.force_login(alice)
    page = client.get(reverse("diagnosis:dashboard")).content.decode()
    assert page.count('<svg class="chart"') == 3
    assert f"{timezone.localdate():%m-%d}: normal 0, pneumonia 1" in page
    assert 'id="stat-positive">100%' in page


def test_stacked_bars_scale_to_the_tallest_stack() -> None:
    chart = charts.stacked(["a", "b"], [("x", [1, 3]), ("y", [1, 1])])
    (_, ha, _), (yb, hb, _) = chart.bars[0].segments
    assert ha == hb == pytest.approx(charts.HEIGHT / 4) and yb == pytest.approx(charts.HEIGHT / 2)
    tallest = chart.bars[1].segments[-1]
    assert tallest[0] == pytest.approx(0.0)  # the top of the tallest stack touches the top
    rates = charts.stacked(["a"], [("r", [0.5])], maximum=1.0)
    assert rates.bars[0].segments[0][1] == pytest.approx(charts.HEIGHT / 2)
