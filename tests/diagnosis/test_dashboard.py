from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from diagnosis import charts, reviews, selectors
from diagnosis.models import Label, Role, Study
from tests import factories
from tests.factories import make_member

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["00:00:01", "23:59:59"], ids=["just-after-midnight", "just-before-midnight"])
def clock(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> datetime:
    """Django's clock fixed a second after, or before, a local midnight: a test about calendar days then gives the
    same answer whenever it runs (a study stored at 23:59:59 and a chart drawn at 00:00:00 no longer disagree)."""
    at = timezone.make_aware(datetime.combine(date(2026, 3, 14), time.fromisoformat(request.param)))
    monkeypatch.setattr(timezone, "now", lambda: at)
    return at


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


def test_counts_per_day_include_empty_days(alice, clock: datetime) -> None:
    old = factories.judged_study(alice, Label.NORMAL)
    Study.objects.filter(pk=old.pk).update(created=timezone.now() - timedelta(days=3))
    factories.judged_study(alice, Label.PNEUMONIA)
    factories.judged_study(alice, Label.PNEUMONIA)
    days = selectors.dashboard(alice, days=7).days
    assert len(days) == 7 and days[-1].day == date(2026, 3, 14) == timezone.localdate()
    assert (days[-1].pneumonia, days[-1].normal) == (2, 0)
    assert (days[-4].normal, days[-4].pneumonia) == (1, 0)
    assert sum(d.total for d in days) == 3


def test_empty_clinic_has_no_rates_not_a_division_by_zero(alice, client) -> None:
    board = selectors.dashboard(alice)
    assert board.positive_rate is None and board.agreement.accuracy is None
    client.force_login(alice)
    assert client.get(reverse("diagnosis:dashboard")).status_code == 200


def test_dashboard_page_draws_a_bar_per_day(alice, client, clock: datetime) -> None:
    factories.judged_study(alice, Label.PNEUMONIA)
    client.force_login(alice)
    page = client.get(reverse("diagnosis:dashboard")).content.decode()
    assert page.count('<svg class="chart"') == 3
    assert "03-14: normal 0, pneumonia 1" in page
    assert 'id="stat-positive">100%' in page


def test_stacked_bars_scale_to_the_tallest_stack() -> None:
    chart = charts.stacked(["a", "b"], [("x", [1, 3]), ("y", [1, 1])])
    (_, ha, _), (yb, hb, _) = chart.bars[0].segments
    assert ha == hb == pytest.approx(charts.HEIGHT / 4) and yb == pytest.approx(charts.HEIGHT / 2)
    tallest = chart.bars[1].segments[-1]
    assert tallest[0] == pytest.approx(0.0)  # the top of the tallest stack touches the top
    rates = charts.stacked(["a"], [("r", [0.5])], maximum=1.0)
    assert rates.bars[0].segments[0][1] == pytest.approx(charts.HEIGHT / 2)


def test_value_axis_ticks_are_round_and_cover_the_tallest_bar() -> None:
    chart = charts.stacked(["a", "b"], [("x", [3, 7])])
    assert [t.label for t in chart.ticks] == ["0", "2", "4", "6", "8"] and chart.maximum == 8
    assert chart.ticks[0].y == charts.HEIGHT and chart.ticks[-1].y == 0
    assert [b.value for b in chart.bars] == ["3", "7"]
    rates = charts.stacked(["a", "b"], [("r", [0.25, 0.0])], maximum=1.0, percent=True)
    assert [t.label for t in rates.ticks] == ["0%", "25%", "50%", "75%", "100%"]
    assert [b.value for b in rates.bars] == ["25%", ""]  # an empty bar gets no value
    assert charts.nice_step(37) == 10 and charts.nice_step(3) == 1 and charts.nice_step(130) == 50


def test_the_charts_have_axes_titles_and_values(alice, client) -> None:
    for _ in range(3):
        factories.judged_study(alice, Label.PNEUMONIA)
    client.force_login(alice)
    page = client.get(reverse("diagnosis:dashboard")).content.decode()
    assert page.count('class="axis"') == 6  # an x and a y axis per chart
    assert '<text class="axis-title" x="-44" y="-8">studies</text>' in page
    assert ">day (month-day)</text>" in page
    assert '<text class="value"' in page and ">3</text>" in page  # today's bar says 3
    assert ">100%</text>" in page  # the rate axis' top tick and today's rate


def test_an_empty_clinic_gets_an_empty_state_not_empty_charts(alice, client) -> None:
    client.force_login(alice)
    page = client.get(reverse("diagnosis:dashboard")).content.decode()
    assert 'id="dashboard-empty"' in page and '<svg class="chart"' not in page


def test_accuracy_on_few_reviews_carries_a_caveat(alice, clinic_a, client) -> None:
    reviewer = make_member("rita", clinic_a, Role.REVIEWER)
    client.force_login(alice)
    factories.judged_study(alice, Label.PNEUMONIA)
    page = client.get(reverse("diagnosis:dashboard")).content.decode()
    assert 'id="no-reviews"' in page and 'id="few-reviews"' not in page
    for _ in range(selectors.FEW_REVIEWS - 1):
        reviews.review_study(reviewer, factories.judged_study(alice, Label.PNEUMONIA), agrees=True, note="")
    page = client.get(reverse("diagnosis:dashboard")).content.decode()
    assert 'id="few-reviews"' in page and f"only {selectors.FEW_REVIEWS - 1} reviews" in page
    reviews.review_study(reviewer, factories.judged_study(alice, Label.NORMAL), agrees=True, note="")
    page = client.get(reverse("diagnosis:dashboard")).content.decode()
    assert 'id="few-reviews"' not in page and 'id="no-reviews"' not in page
