"""Issue 13 on the server side: the probability in words, revising a review keeps its note, save & next
follows the worklist's order and filter, the upload's JSON names each file's fate, the invite page does not
claim an e-mail that was never sent, and no template carries a script."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.urls import reverse

from diagnosis import reviews
from diagnosis.models import Label, Review, Role
from diagnosis.presenters import percent, probability_scale
from tests import factories, images
from tests.factories import make_member, upload_file

pytestmark = pytest.mark.django_db
TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


@pytest.fixture
def rita(clinic_a):
    return make_member("rita", clinic_a, Role.REVIEWER)


@pytest.mark.parametrize(
    ("p", "text"), [(0.0, "< 1 %"), (0.009, "< 1 %"), (0.01, "1 %"), (0.5, "50 %"), (0.99, "99 %"), (0.999, "> 99 %")]
)
def test_it_writes_probabilities_without_false_certainty(p: float, text: str) -> None:
    assert percent(p) == text


def test_it_places_the_threshold_and_the_borderline_band_on_the_same_scale() -> None:
    scale = probability_scale(0.47, 0.424)
    assert scale["threshold_text"] == "42.4 %" and scale["threshold_pos"] == 42.4
    assert scale["band_from"] == 32.4 and scale["band_width"] == 20.0 and scale["borderline"]
    assert not probability_scale(0.9, 0.424)["borderline"]


def test_it_preselects_the_decision_and_keeps_the_note_when_a_review_is_revised(client, alice, rita) -> None:
    study = factories.judged_study(alice, Label.PNEUMONIA, 0.8)
    reviews.review_study(rita, study, agrees=False, note="Artefact.")
    client.force_login(rita)
    html = client.get(reverse("diagnosis:study", args=[study.pk])).content.decode()
    assert re.search(r'value="disagree"[^>]*checked', html), html
    assert re.search(r">\s*Artefact\.</textarea>", html)
    assert "Disagree → Normal" in html and "Agree → Pneumonia" in html


def test_it_saves_and_opens_the_next_study_of_the_worklist_in_its_order_and_filter(client, alice, rita) -> None:
    high, low = (factories.judged_study(alice, Label.PNEUMONIA, p) for p in (0.9, 0.7))
    factories.judged_study(alice, Label.NORMAL, 0.1)  # not in the filter
    client.force_login(rita)
    form = {"decision": "agree", "note": "", "from": "worklist", "wl": "label=PNEUMONIA", "action": "next"}
    first = client.post(reverse("diagnosis:study_review", args=[high.pk]), form)
    assert first["Location"] == f"/studies/{low.pk}/?from=worklist&wl=label%3DPNEUMONIA"
    last = client.post(reverse("diagnosis:study_review", args=[low.pk]), form)
    assert last["Location"] == "/worklist/?label=PNEUMONIA"  # the end of the list: back to it, filter kept
    assert Review.objects.count() == 2


def test_it_names_each_files_fate_in_the_uploads_json(client, alice) -> None:
    client.force_login(alice)
    files = [upload_file("good.png"), upload_file("empty.png", b""), upload_file("b.jpg", images.jpeg(), "image/jpeg")]
    body = client.post(reverse("diagnosis:upload"), {"images": files}, HTTP_ACCEPT="application/json").json()
    assert [s["name"] for s in body["studies"]] == ["good.png", "b.jpg"]
    assert body["studies"][0]["status_url"].endswith("/status/")
    assert [(e["file"], "empty" in e["message"].lower()) for e in body["errors"]] == [("empty.png", True)]


def test_it_does_not_say_an_email_was_sent_without_a_mail_server(client, clinic_a, settings) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.dummy.EmailBackend"
    client.force_login(make_member("ann", clinic_a, Role.ADMIN))
    data = {"username": "newdoc", "email": "newdoc@example.org", "role": "reviewer"}
    html = client.post(reverse("diagnosis:people"), data).content.decode()
    assert "No e-mail was sent" in html and "was sent\n  to" not in html


def test_no_template_carries_a_script_or_an_event_handler() -> None:
    for path in TEMPLATES.rglob("*.html"):
        text = path.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), f"{path}: inline script"
        assert not re.search(r"\son[a-z]+=", text), f"{path}: inline event handler"
