"""Issue 27 on the server side, for the study page, the upload page, the report and the viewer: study details
never carry over to the next patient, a borderline normal call says what is true, a probability says it is the
probability of pneumonia, DICOM is offered, a reviewer's page needs no reload, comparing names the relation and
the time, and the viewer's labels and the details table read as they should."""

from __future__ import annotations

import html as html_lib
import re

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from diagnosis.models import Label, Role, Study
from diagnosis.presenters import margin_text, status_payload
from tests import factories
from tests.factories import make_member, upload_file

pytestmark = pytest.mark.django_db
DETAILS = {"patient_ref": "P-77", "age_years": "4", "sex": "F", "projection": "PA", "clinical_note": "fever"}


def logged_in(user: User) -> Client:
    c = Client()
    c.force_login(user)
    return c


def text(markup: str) -> str:
    """The page's text as a reader sees it: tags dropped, entities read, white space collapsed."""
    return " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", markup)).split())


def field_value(markup: str, name: str) -> str | None:
    tag = re.search(rf'<(?:input|textarea)[^>]*name="{name}"[^>]*>(?:([^<]*)</textarea>)?', markup)
    assert tag, name
    if tag.group(0).startswith("<textarea"):
        return tag.group(1).strip() or None
    value = re.search(r'value="([^"]*)"', tag.group(0))
    return value.group(1) if value else None


def page(user: User, study: Study, **query: str) -> str:
    response = logged_in(user).get(reverse("diagnosis:study", args=[study.pk]), query)
    assert response.status_code == 200
    return response.content.decode()


# Item 1: details never carry over to the next patient.


def test_it_clears_the_details_after_an_upload_without_the_script(alice: User) -> None:
    files = [upload_file("good.png"), upload_file("bad.png", b"nope")]
    markup = logged_in(alice).post(reverse("diagnosis:upload"), {"images": files, **DETAILS}).content.decode()
    assert [field_value(markup, f) for f in ("patient_ref", "age_years", "clinical_note")] == [None, None, None]
    assert "cleared for the next patient" in text(markup)
    fates = text(markup.split('id="fates"')[1])
    assert "good.png queued Patient P-77 · 4 years · Female · PA · Note: fever" in fates, fates


def test_it_keeps_the_details_only_when_asked_and_shows_what_it_kept(alice: User) -> None:
    files = [upload_file("good.png"), upload_file("bad.png", b"nope")]
    form = {"images": files, **DETAILS, "keep_details": "on"}
    markup = logged_in(alice).post(reverse("diagnosis:upload"), form).content.decode()
    assert [field_value(markup, f) for f in ("patient_ref", "age_years", "clinical_note")] == ["P-77", "4", "fever"]
    assert "Kept for the next upload: Patient P-77 · 4 years · Female · PA · Note: fever" in text(markup)
    assert re.search(r'<input[^>]*name="keep_details"[^>]*checked', markup)


def test_the_upload_page_offers_to_keep_the_details_unticked(alice: User) -> None:
    markup = logged_in(alice).get(reverse("diagnosis:upload")).content.decode()
    keep = re.search(r'<input[^>]*name="keep_details"[^>]*>', markup)
    assert keep and "checked" not in keep.group(0)
    assert "Keep these details for the next upload" in text(markup)


def test_each_study_of_the_uploads_json_says_which_details_it_got(alice: User) -> None:
    body = logged_in(alice).post(
        reverse("diagnosis:upload"), {"images": [upload_file("a.png")], **DETAILS}, HTTP_ACCEPT="application/json"
    )
    assert body.json()["studies"][0]["details"] == "Patient P-77 · 4 years · Female · PA · Note: fever"
    plain = logged_in(alice).post(
        reverse("diagnosis:upload"), {"images": [upload_file("b.png")]}, HTTP_ACCEPT="application/json"
    )
    assert plain.json()["studies"][0]["details"] == "No study details"


# Items 2 and 3: a borderline normal call, and what the percentage is.


@pytest.fixture
def borderline_normal(alice: User) -> Study:
    return factories.judge(factories.study(alice, patient_ref="P-1"), Label.NORMAL, 0.66, threshold=0.696)


def test_a_borderline_normal_call_says_below_and_close_to_the_threshold(alice: User, borderline_normal) -> None:
    words = text(page(alice, borderline_normal))
    assert "No focal evidence" not in words
    assert "3.6 points below the decision threshold 69.6 %" in words, words
    assert "Borderline: close to the threshold" in words
    assert "The model draws no map for a normal call" in words
    assert "not evidence against pneumonia" in words  # borderline: the missing map is said not to reassure


def test_a_clear_normal_call_says_below_the_threshold_without_borderline(alice: User) -> None:
    clear = factories.judge(factories.study(alice), Label.NORMAL, 0.1, threshold=0.696)
    words = text(page(alice, clear))
    assert "59.6 points below the decision threshold 69.6 %" in words and "Borderline" not in words
    assert "The model draws no map for a normal call" in words and "not evidence against" not in words


def test_the_report_says_the_same_of_a_borderline_normal_call(alice: User, borderline_normal) -> None:
    markup = logged_in(alice).get(reverse("diagnosis:study_report", args=[borderline_normal.pk])).content.decode()
    words = text(markup)
    assert "No focal evidence" not in words
    assert "Normal 66 % probability of pneumonia: 3.6 points below the decision threshold 69.6 %" in words, words
    assert "Borderline: close to the threshold" in words and "The model draws no map for a normal call" in words


@pytest.mark.parametrize(
    ("p", "t", "words"),
    [
        (0.66, 0.696, "3.6 points below"),
        (0.97, 0.696, "27.4 points above"),
        (0.5, 0.5, "at"),
        (0.42, 0.4, "2 points above"),
    ],
)
def test_it_puts_the_margin_to_the_threshold_in_points(p: float, t: float, words: str) -> None:
    assert margin_text(p, t) == words


def test_the_call_reads_as_the_probability_of_pneumonia(alice: User, borderline_normal) -> None:
    markup = page(alice, borderline_normal)
    line = re.search(r'<p[^>]*id="probability-line"[^>]*>(.*?)</p>', markup, re.S)
    assert line and text(line.group(1)) == "66 % probability of pneumonia"
    label = re.search(r'<p[^>]*class="call"[^>]*>(.*?)</p>', markup, re.S)
    assert label and text(label.group(1)) == "Normal"  # the label stands alone, no bare percentage beside it


def test_the_priors_and_the_compared_study_give_p_pneumonia(alice: User, borderline_normal) -> None:
    later = factories.judge(factories.study(alice, patient_ref="P-1"), Label.PNEUMONIA, 0.93)
    markup = page(alice, borderline_normal, compare=str(later.pk))
    priors = markup.split('id="priors"')[1]
    assert re.search(
        r'Pneumonia</span>\s*·\s*<abbr title="probability of pneumonia">P\(pneumonia\)</abbr> 93 %', priors
    )
    title = re.search(r'<p class="viewer-title">(.*?)</p>', markup.split('id="viewer-compare"')[1], re.S)
    assert title and "Pneumonia · P(pneumonia) 93 %" in text(title.group(1)), title


# Item 7: DICOM.


def test_the_upload_page_says_dicom_and_its_chooser_accepts_it(alice: User) -> None:
    markup = logged_in(alice).get(reverse("diagnosis:upload")).content.decode()
    chooser = re.search(r'<input[^>]*type="file"[^>]*>', markup)
    assert chooser
    accept = re.search(r'accept="([^"]*)"', chooser.group(0))
    assert accept and {".dcm", "application/dicom", "image/jpeg", "image/png"} <= set(accept.group(1).split(","))
    assert "DICOM, JPEG or PNG" in text(markup)


# Item 8: the reviewer's page has what the result needs before it arrives (no reload).


def test_a_reviewers_page_of_a_queued_study_holds_the_hidden_review_form(alice: User, clinic_a) -> None:
    queued = factories.study(alice)
    rita = make_member("rita", clinic_a, Role.REVIEWER)
    markup = page(rita, queued)
    panel = re.search(r'<div id="review" class="panel"([^>]*)>', markup)
    assert panel and "hidden" in panel.group(1)
    assert 'id="review-form"' in markup
    assert 'id="review"' not in page(alice, queued)  # a clinician reviews nothing
    judged = factories.judge(queued, Label.PNEUMONIA, 0.8)
    assert status_payload(judged)["result"]["decisions"] == {
        "agree": "Agree → Pneumonia",
        "disagree": "Disagree → Normal",
    }


# Item 9: comparing studies.


def test_priors_show_time_and_file_and_a_later_study_is_called_later(alice: User) -> None:
    now = factories.judged_study(alice, patient_ref="P-9", name="first-film.png")
    later = factories.judged_study(alice, Label.NORMAL, 0.2, patient_ref="P-9", name="second-film.png")
    markup = page(alice, now, compare=str(later.pk))
    priors = text(markup.split('id="priors"')[1].split("</ul>")[0])
    local = timezone.localtime(later.created)
    assert f"Later {local:%Y-%m-%d %H:%M} second-film.png" in priors, priors
    title = re.search(r'<p class="viewer-title">(.*?)</p>', markup.split('id="viewer-compare"')[1], re.S)
    assert title and text(title.group(1)).startswith("Later: second-film.png"), title
    assert "Prior" not in text(markup)
    assert f"This study: first-film.png, {timezone.localtime(now.created):%Y-%m-%d %H:%M}" in text(markup)
    assert re.search(r'<input[^>]*type="checkbox"[^>]*id="link-viewers"', markup)
    earlier_page = text(page(alice, later, compare=str(now.pk)))
    assert "Earlier: first-film.png" in earlier_page and "Earlier " in earlier_page


# Item 16: the viewer's labels and the details table.


def test_the_heatmap_checkbox_and_the_opacity_slider_have_labels_of_their_own(alice: User) -> None:
    markup = page(alice, factories.judged_study(alice, Label.PNEUMONIA, 0.9))
    tools = markup.split('class="heatmap-tools"')[1].split("</span>")[0]
    labels = [text(m) for m in re.findall(r"<label[^>]*>(.*?)</label>", tools, re.S)]
    assert labels == ["Show heatmap", "Heatmap opacity"], labels


def test_the_details_table_has_one_label_and_one_value_a_row(alice: User) -> None:
    study = factories.judged_study(alice, patient_ref="P-3", age_years=3, clinical_note="cough")
    for url in (reverse("diagnosis:study", args=[study.pk]), reverse("diagnosis:study_report", args=[study.pk])):
        markup = logged_in(alice).get(url).content.decode()
        table = markup.split('class="details-table"')[1].split("</table>")[0]
        rows = re.findall(r"<tr>(.*?)</tr>", table, re.S)
        shape = [(r.count("<th"), r.count("<td")) for r in rows]
        assert shape == [(1, 1)] * 5, shape


def test_no_template_comment_shows_on_the_pages_or_in_the_status(alice: User, borderline_normal) -> None:
    """Django's {# #} comments end at the line's end: one spread over two lines was printed in the page."""
    urls = [reverse(name, args=[borderline_normal.pk]) for name in ("diagnosis:study", "diagnosis:study_report")]
    bodies = [logged_in(alice).get(url).content.decode() for url in [*urls, reverse("diagnosis:upload")]]
    status = status_payload(borderline_normal)
    for body in [*bodies, status["result_html"], status["result_more_html"]]:
        assert "{#" not in body and "#}" not in body and "{%" not in body, body
