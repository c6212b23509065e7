import re

import pytest
from django.test import Client
from django.urls import reverse

from diagnosis import intake
from diagnosis.models import JobStatus, Result, Study
from diagnosis.presenters import population_warning
from diagnosis.viewing import FileKind
from tests import factories, images
from tests.factories import make_member, upload_file

pytestmark = pytest.mark.django_db


@pytest.fixture
def done_study(alice):
    study = intake.submit_files(alice, [upload_file("alice.png")]).studies[0]
    return factories.judge(study, "PNEUMONIA", 0.87, threshold=0.4, model_version="test-v1", inference_ms=15)


def study_urls(study) -> list[str]:
    urls = [reverse("diagnosis:study", args=[study.pk]), reverse("diagnosis:study_status", args=[study.pk])]
    return urls + [reverse("diagnosis:study_file", args=[study.pk, k]) for k in FileKind]


def logged_in(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def test_owner_gets_every_study_url(alice, done_study) -> None:
    client = logged_in(alice)
    for url in study_urls(done_study):
        assert client.get(url).status_code == 200, url


def test_another_user_gets_404_on_every_study_url(bob, done_study) -> None:
    client = logged_in(bob)
    for url in study_urls(done_study):
        assert client.get(url).status_code == 404, url
    assert "alice.png" not in client.get(reverse("diagnosis:history")).content.decode()


def test_anonymous_is_sent_to_login_everywhere(done_study) -> None:
    client = Client()
    pages = [reverse("diagnosis:upload"), reverse("diagnosis:history"), *study_urls(done_study)]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), url


def test_files_have_their_content_types(alice, done_study) -> None:
    client = logged_in(alice)
    get = lambda kind: client.get(reverse("diagnosis:study_file", args=[done_study.pk, kind]))  # noqa: E731
    assert get("image")["Content-Type"] == "image/png"
    assert get("heatmap")["Content-Type"] == "image/png"
    assert get("overlay")["Content-Type"] == "image/jpeg"
    assert get("overlay")["Content-Disposition"].endswith('filename="overlay.jpg"')
    assert get("thumbnail")["Content-Type"] == "image/jpeg"
    assert b"".join(get("image").streaming_content) == images.png()  # type: ignore[attr-defined]
    assert client.get(reverse("diagnosis:study_file", args=[done_study.pk, "secret"])).status_code == 404


@pytest.mark.parametrize(
    ("name", "data", "served"),
    [
        ("poly.html", images.jpeg() + b"<html><script>alert(1)</script></html>", "poly.jpg"),
        ("scan.svg", images.png(), "scan.png"),
        ("chest.JPEG.exe", images.jpeg(), "chest.JPEG.jpg"),
        (".html", images.png(), "original.png"),
        ("no-extension", images.png(), "no-extension.png"),
    ],
)
def test_the_original_is_stored_and_served_under_the_extension_of_its_type(alice, name, data, served) -> None:
    """Issue 28, item 10: a JPEG with HTML appended, uploaded as poly.html, downloaded as poly.html (a page)."""
    study = intake.submit_files(alice, [upload_file(name, data)]).studies[0]
    assert (study.image.name or "").endswith("-original" + served[served.rindex(".") :])
    response = logged_in(alice).get(reverse("diagnosis:study_file", args=[study.pk, "image"]))
    assert response["Content-Disposition"] == f'inline; filename="{served}"'
    assert response["Content-Type"] == study.content_type and study.original_name == name  # the list shows it


def test_awkward_file_names_are_served_safely(alice) -> None:
    study = intake.submit_files(alice, [upload_file('x"\r\nSet-Cookie: a=b é.png')]).studies[0]
    response = logged_in(alice).get(reverse("diagnosis:study_file", args=[study.pk, "image"]))
    assert response.status_code == 200
    assert "\n" not in response["Content-Disposition"] and "Set-Cookie" not in response.headers


def test_heatmap_of_an_unfinished_study_is_404(alice) -> None:
    study = intake.submit_files(alice, [upload_file()]).studies[0]
    client = logged_in(alice)
    assert client.get(reverse("diagnosis:study_file", args=[study.pk, "heatmap"])).status_code == 404
    status = client.get(reverse("diagnosis:study_status", args=[study.pk])).json()
    assert status["status"] == "queued" and status["final"] is False and status["result"] is None


def test_status_json_of_a_done_study(alice, done_study) -> None:
    data = logged_in(alice).get(reverse("diagnosis:study_status", args=[done_study.pk])).json()
    assert data["status"] == "done" and data["final"] is True
    assert data["result"]["label"] == "PNEUMONIA"
    assert data["result"]["probability"] == pytest.approx(0.87)
    assert data["result"]["model_version"] == "test-v1"
    assert data["result"]["heatmap_url"].endswith("/files/heatmap/")


def test_study_page_shows_label_probability_and_images(alice, done_study) -> None:
    html = logged_in(alice).get(reverse("diagnosis:study", args=[done_study.pk])).content.decode()
    assert "Pneumonia" in html and "87 %" in html and "test-v1" in html
    assert "/files/heatmap/" in html  # a pneumonia call: its map is a layer of the viewer


def test_upload_one_file_redirects_to_its_study(alice) -> None:
    response = logged_in(alice).post(reverse("diagnosis:upload"), {"images": upload_file("one.png")})
    assert response.status_code == 302
    assert alice.studies.get().original_name == "one.png"
    assert response["Location"] == reverse("diagnosis:study", args=[alice.studies.get().pk])


def test_upload_several_files_at_once(alice) -> None:
    files = [upload_file("a.png"), upload_file("b.jpg", images.jpeg(), "image/jpeg")]
    response = logged_in(alice).post(reverse("diagnosis:upload"), {"images": files})
    assert response.status_code == 302 and response["Location"] == reverse("diagnosis:history")
    assert alice.studies.count() == 2


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"", "empty"), (b"MZ\x90\x00 an exe", "not a JPEG or PNG"), (images.jpeg()[:700], "truncated or corrupt")],
)
def test_bad_upload_shows_a_form_error_and_keeps_nothing(alice, data: bytes, message: str) -> None:
    response = logged_in(alice).post(reverse("diagnosis:upload"), {"images": upload_file("bad.jpg", data)})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert alice.studies.count() == 0


def test_mixed_upload_keeps_the_good_and_reports_the_bad(alice) -> None:
    files = [upload_file("good.png"), upload_file("bad.png", b"nope")]
    response = logged_in(alice).post(reverse("diagnosis:upload"), {"images": files})
    assert response.status_code == 200  # it queued one: a partial success, not a bad request
    fates = response.content.decode().split('id="fates"')[1]  # the page names each file's fate
    assert re.search(r'good\.png</a><span class="badge queued">queued', fates), fates
    assert re.search(r"bad\.png</span>.*refused.*The file is not a JPEG or PNG image\.", fates), fates
    assert [s.original_name for s in alice.studies.all()] == ["good.png"]


def test_upload_without_a_file_is_a_form_error(alice) -> None:
    response = logged_in(alice).post(reverse("diagnosis:upload"), {})
    assert response.status_code == 400 and "This field is required" in response.content.decode()


def test_oversized_upload_is_refused(alice, settings) -> None:
    settings.MAX_UPLOAD_BYTES = 2048
    response = logged_in(alice).post(
        reverse("diagnosis:upload"), {"images": upload_file("big.png", images.png(600, 600))}
    )
    assert response.status_code == 400 and "limit" in response.content.decode()
    assert alice.studies.count() == 0


def test_an_upload_just_over_the_size_limit_says_so_in_bytes(alice, settings) -> None:
    """From a red-team pass: a file one byte over 30 MB was refused as "30.0 MB; the limit is 30 MB"."""
    settings.MAX_UPLOAD_BYTES = 2 * 2**20
    data = images.png(600, 600)
    big = upload_file("big.png", data + b"\0" * (settings.MAX_UPLOAD_BYTES + 1 - len(data)))
    response = logged_in(alice).post(reverse("diagnosis:upload"), {"images": big})
    assert response.status_code == 400
    assert "2,097,153 bytes; the limit is 2,097,152 bytes (2 MB)" in response.content.decode()


def test_more_files_than_a_request_may_carry_get_a_page_that_says_so(alice, settings) -> None:
    """From a red-team pass: past Django's file count, the page answered a bare "Bad Request (400)"."""
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 3
    files = [upload_file(f"{i}.png") for i in range(4)]
    response = logged_in(alice).post(reverse("diagnosis:upload"), {"images": files})
    text = response.content.decode()
    assert response.status_code == 400 and "more files than one request may carry" in text
    assert alice.studies.count() == 0


def test_history_paginates_and_filters(alice, done_study) -> None:
    intake.submit_files(alice, [upload_file(f"s{i}.png") for i in range(21)])
    client = logged_in(alice)
    first = client.get(reverse("diagnosis:history")).content.decode()
    assert "Page 1 of 2" in first and "s20.png" in first and "alice.png" not in first
    second = client.get(reverse("diagnosis:history") + "?page=2").content.decode()
    assert "alice.png" in second
    only_pneumonia = client.get(reverse("diagnosis:history") + "?label=PNEUMONIA").content.decode()
    assert "alice.png" in only_pneumonia and "s3.png" not in only_pneumonia
    queued = client.get(reverse("diagnosis:history") + f"?status={JobStatus.QUEUED}").content.decode()
    assert "alice.png" not in queued and "s3.png" in queued
    assert Result.objects.count() == 1


def test_login_and_logout(alice) -> None:
    client = Client()
    response = client.post(reverse("login"), {"username": "alice", "password": "alice-pass-123"})
    assert response.status_code == 302
    assert client.get(reverse("diagnosis:history")).status_code == 200
    client.post(reverse("logout"))
    assert client.get(reverse("diagnosis:history")).status_code == 302


def test_upload_keeps_the_patient_details_and_warns_outside_the_population(alice) -> None:
    client = Client()
    client.force_login(alice)
    details = {"patient_ref": " P-77 ", "age_years": "42", "sex": "F", "projection": "PA", "clinical_note": "fever"}
    response = client.post(reverse("diagnosis:upload"), {"images": upload_file(), **details})
    study = Study.objects.get()
    assert (study.patient_ref, study.age_years, study.sex, study.projection) == ("P-77", 42, "F", "PA")
    page = client.get(response["Location"]).content.decode()
    assert 'id="population-warning"' in page and "42 years old" in page and "aged 1 to 5 years" in page


def test_no_warning_inside_the_population_or_without_an_age(alice) -> None:
    assert population_warning(3) == "" and population_warning(None) == ""
    assert "0 years old" in population_warning(0) and "6 years old" in population_warning(6)


def test_impossible_patient_details_are_form_errors(alice) -> None:
    client = Client()
    client.force_login(alice)
    response = client.post(reverse("diagnosis:upload"), {"images": upload_file(), "age_years": "-1", "sex": "X"})
    assert response.status_code == 400 and not Study.objects.exists()


def test_a_colleague_in_the_clinic_can_open_the_study_but_it_is_not_in_their_history(
    alice, clinic_a, done_study
) -> None:
    colleague = make_member("carl", clinic_a)
    client = Client()
    client.force_login(colleague)
    assert client.get(reverse("diagnosis:study", args=[done_study.pk])).status_code == 200
    assert str(done_study.pk) not in client.get(reverse("diagnosis:history")).content.decode()


def test_a_user_without_a_clinic_is_told_so(django_user_model) -> None:
    loner = django_user_model.objects.create_user("loner", password="loner-pass-123")
    client = Client()
    client.force_login(loner)
    response = client.get(reverse("diagnosis:upload"))
    assert response.status_code == 403 and "not a member of a clinic" in response.content.decode()


def test_a_login_lands_clinicians_on_upload_and_reviewers_on_the_worklist(alice, clinic_a) -> None:
    from diagnosis.models import Role

    make_member("rita", clinic_a, Role.REVIEWER)
    for username, page in (("alice", "diagnosis:upload"), ("rita", "diagnosis:worklist")):
        client = Client()
        response = client.post(
            reverse("login"), {"username": username, "password": f"{username}-pass-123"}, follow=True
        )
        assert response.redirect_chain[-1][0] == reverse(page)


def test_an_overlay_stored_as_png_before_issue_12_is_still_served_as_png(alice, done_study) -> None:
    from django.core.files.base import ContentFile

    result = done_study.result
    result.overlay.save("overlay.png", ContentFile(images.png()), save=True)
    response = logged_in(alice).get(reverse("diagnosis:study_file", args=[done_study.pk, "overlay"]))
    assert response["Content-Type"] == "image/png"
    assert response["Content-Disposition"].endswith('filename="overlay.png"')


def test_a_file_missing_from_storage_is_a_404_not_a_server_error(alice, client) -> None:
    study = factories.judged_study(alice)
    study.thumbnail.storage.delete(str(study.thumbnail.name))
    client.force_login(alice)
    answer = client.get(f"/studies/{study.pk}/files/thumbnail/")
    assert answer.status_code == 404
