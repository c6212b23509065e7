import io

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from diagnosis import intake, reviews
from diagnosis.models import Study
from tests import factories, images
from tests.factories import upload_file, zip_of

pytestmark = pytest.mark.django_db
API = "/api/v1"


def _done(study: Study) -> Study:
    return factories.judge(study, "NORMAL", 0.12, threshold=0.4, model_version="api-test")


def test_post_images_answers_202_with_batch_studies_and_errors(alice_api: APIClient) -> None:
    files = [upload_file("a.png"), upload_file("b.png", b"not an image"), upload_file("c.png", images.jpeg())]
    r = alice_api.post(f"{API}/studies/", {"images": files}, format="multipart")
    assert r.status_code == 202
    body = r.json()
    assert [s["file_name"] for s in body["studies"]] == ["a.png", "c.png"]
    assert all(
        s["status"] == "queued" and s["url"].startswith("http://testserver/api/v1/studies/") for s in body["studies"]
    )
    assert body["errors"] == [{"file_name": "b.png", "error": "The file is not a JPEG or PNG image."}]
    assert Study.objects.filter(batch_id=body["batch"]).count() == 2


def test_post_without_files_is_400(alice_api: APIClient) -> None:
    r = alice_api.post(f"{API}/studies/", {}, format="multipart")
    assert r.status_code == 400 and "images" in str(r.json())


def test_zip_archive_refuses_bad_entries_one_by_one(alice_api: APIClient, settings) -> None:
    settings.MAX_UPLOAD_BYTES = 200_000
    archive = zip_of(
        {
            "ok/one.png": images.png(),
            "../../etc/evil.png": images.png(),
            "/abs/path.png": images.png(),
            "inner.zip": zip_of({"x.png": images.png()}).getvalue(),
            "huge.png": b"\0" * 300_000,
            "readme.txt": b"hello",
            "ok/two.jpg": images.jpeg(),
        }
    )
    r = alice_api.post(f"{API}/studies/", {"archive": archive}, format="multipart")
    assert r.status_code == 202
    body = r.json()
    assert sorted(s["file_name"] for s in body["studies"]) == ["one.png", "two.jpg"]
    errors = {e["file_name"]: e["error"] for e in body["errors"]}
    assert "unsafe path" in errors["../../etc/evil.png"]
    assert "unsafe path" in errors["/abs/path.png"]
    assert "nested archives" in errors["inner.zip"]
    assert "uncompressed" in errors["huge.png"]
    assert "not a JPEG or PNG" in errors["readme.txt"]


def test_zip_bomb_total_is_refused(alice_api: APIClient, settings) -> None:
    settings.MAX_ARCHIVE_BYTES = len(images.png()) * 2 + 10
    archive = zip_of({f"{i}.png": images.png() for i in range(4)})
    body = alice_api.post(f"{API}/studies/", {"archive": archive}, format="multipart").json()
    assert len(body["studies"]) == 2
    assert all("uncompressed size passes" in e["error"] for e in body["errors"]) and len(body["errors"]) == 2


def test_not_a_zip_is_reported(alice_api: APIClient) -> None:
    bad = io.BytesIO(b"plain text")
    bad.name = "x.zip"
    body = alice_api.post(f"{API}/studies/", {"archive": bad}, format="multipart").json()
    assert body["studies"] == [] and body["errors"][0]["error"] == "not a valid zip archive."


def test_idempotency_key_replays_the_first_answer(alice_api: APIClient) -> None:
    headers = {"Idempotency-Key": "retry-123"}
    first = alice_api.post(f"{API}/studies/", {"images": [upload_file()]}, format="multipart", headers=headers)
    again = alice_api.post(f"{API}/studies/", {"images": [upload_file()]}, format="multipart", headers=headers)
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json()
    assert Study.objects.count() == 1
    other = alice_api.post(
        f"{API}/studies/", {"images": [upload_file()]}, format="multipart", headers={"Idempotency-Key": "another"}
    )
    assert other.json()["batch"] != first.json()["batch"] and Study.objects.count() == 2


def test_one_idempotency_key_used_by_two_users_is_two_requests(alice_api: APIClient, bob_api: APIClient) -> None:
    """Keys are per user: bob reusing alice's key (a client's counter, a default) gets his own study in his own
    clinic, never alice's stored answer; each one's retry replays their own."""
    headers = {"Idempotency-Key": "batch-0001"}
    post = lambda client: client.post(  # noqa: E731
        f"{API}/studies/", {"images": [upload_file()]}, format="multipart", headers=headers
    )
    alices, bobs = post(alice_api), post(bob_api)
    assert alices.status_code == bobs.status_code == 202
    alice_ids, bob_ids = ({s["id"] for s in r.json()["studies"]} for r in (alices, bobs))
    assert len(alice_ids) == len(bob_ids) == 1 and not alice_ids & bob_ids
    assert {str(s.pk): s.clinic.slug for s in Study.objects.all()} == {**dict.fromkeys(alice_ids, "a"),
                                                                       **dict.fromkeys(bob_ids, "b")}  # fmt: skip
    assert post(alice_api).json() == alices.json() and post(bob_api).json() == bobs.json()
    assert Study.objects.count() == 2


def test_detail_for_owner_other_and_anonymous(alice, alice_api: APIClient, bob_api: APIClient) -> None:
    study = _done(intake.submit_files(alice, [upload_file("d.png")]).studies[0])
    r = alice_api.get(f"{API}/studies/{study.pk}/")
    assert r.status_code == 200
    body = r.json()
    assert {k: body[k] for k in ("status", "label", "probability", "threshold", "model_version", "error")} == {
        "status": "done",
        "label": "NORMAL",
        "probability": 0.12,
        "threshold": 0.4,
        "model_version": "api-test",
        "error": None,
    }
    for key in ("id", "created", "completed", "image_url", "heatmap_url", "overlay_url"):
        assert body[key]
    for url in (f"{API}/studies/{study.pk}/", body["image_url"], body["heatmap_url"], body["overlay_url"]):
        assert alice_api.get(url).status_code == 200, url
        assert bob_api.get(url).status_code == 404, url
        assert APIClient().get(url).status_code == 401, url


def test_files_stream_the_stored_bytes(alice, alice_api: APIClient) -> None:
    study = _done(intake.submit_files(alice, [upload_file("f.png")]).studies[0])
    r = alice_api.get(f"{API}/studies/{study.pk}/image/")
    assert b"".join(r.streaming_content) == images.png()  # type: ignore[attr-defined]
    assert alice_api.get(f"{API}/studies/{study.pk}/thumbnail/").status_code == 404


def test_list_is_scoped_paginated_and_filtered(alice, bob, alice_api: APIClient) -> None:
    done = _done(intake.submit_files(alice, [upload_file("done.png")]).studies[0])
    batch, _ = intake.submit_batch(alice, [upload_file("q1.png"), upload_file("q2.png")], None)
    intake.submit_files(bob, [upload_file("bobs.png")])
    names = lambda r: sorted(s["file_name"] for s in r.json()["results"])  # noqa: E731
    assert names(alice_api.get(f"{API}/studies/")) == ["done.png", "q1.png", "q2.png"]
    assert names(alice_api.get(f"{API}/studies/?status=done")) == ["done.png"]
    assert names(alice_api.get(f"{API}/studies/?label=NORMAL")) == ["done.png"]
    assert names(alice_api.get(f"{API}/studies/?batch={batch.pk}")) == ["q1.png", "q2.png"]
    after = done.created.isoformat().replace("+00:00", "Z")
    assert "done.png" in names(alice_api.get(f"{API}/studies/", {"created_after": after}))
    assert names(alice_api.get(f"{API}/studies/", {"created_before": after})) == []
    assert alice_api.get(f"{API}/studies/?status=bogus").status_code == 400
    assert alice_api.get(f"{API}/studies/").json()["count"] == 3


def test_batch_progress(alice, alice_api: APIClient, bob_api: APIClient) -> None:
    batch, sub = intake.submit_batch(alice, [upload_file("1.png"), upload_file("2.png")], None)
    _done(sub.studies[0])
    r = alice_api.get(f"{API}/batches/{batch.pk}/")
    assert r.status_code == 200
    body = r.json()
    assert body["total"] == 2 and body["counts"]["done"] == 1 and body["counts"]["queued"] == 1
    assert body["progress"] == 0.5
    assert sorted(body["studies"]) == sorted(str(s.pk) for s in sub.studies)
    assert bob_api.get(f"{API}/batches/{batch.pk}/").status_code == 404
    assert APIClient().get(f"{API}/batches/{batch.pk}/").status_code == 401


def test_throttled_requests_get_429_with_retry_after(alice_api: APIClient, settings) -> None:
    """The rates are the settings that API_THROTTLE_RATE and API_SUBMIT_THROTTLE_RATE set."""
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"user": "3/min", "submissions": "2/min"},
    }
    cache.clear()
    try:
        codes = [alice_api.get(f"{API}/studies/").status_code for _ in range(5)]
        last = alice_api.get(f"{API}/studies/")
        posts = [
            alice_api.post(f"{API}/studies/", {"images": [upload_file()]}, format="multipart").status_code
            for _ in range(3)
        ]
    finally:
        cache.clear()
    assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429]
    assert last.status_code == 429 and int(last["Retry-After"]) > 0
    assert posts == [202, 202, 429]  # submissions have their own scope and rate


def test_schema_and_offline_docs() -> None:
    client = APIClient()
    schema = client.get(f"{API}/schema/?format=json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert {"/api/v1/studies/", "/api/v1/studies/{id}/", "/api/v1/batches/{id}/"} <= set(paths)
    docs = client.get(f"{API}/docs/").content.decode()
    assert "drf_spectacular_sidecar/swagger-ui-dist" in docs
    assert "cdn" not in docs.lower() and "unpkg" not in docs.lower()


@pytest.mark.parametrize(
    "when", ["1652-01-10T01:28:52.5-20:19", "0001-01-01T00:00:00+23:00", "9999-12-31T23:59:59-23:00"]
)
def test_extreme_timezone_offsets_are_not_a_server_error(alice_api: APIClient, when: str) -> None:
    # Found by the schema fuzzer on PostgreSQL, which refuses offsets past 16 hours.
    r = alice_api.get(f"{API}/studies/", {"created_after": when, "created_before": when})
    assert r.status_code == 200 and r.json()["count"] == 0


def test_patient_details_travel_with_a_submission_and_come_back(alice_api: APIClient) -> None:
    details = {"patient_ref": "P-9", "age_years": "4", "sex": "M", "projection": "AP", "clinical_note": "cough"}
    body = alice_api.post(f"{API}/studies/", {"images": [upload_file()], **details}, format="multipart").json()
    study = alice_api.get(body["studies"][0]["url"]).json()
    assert {k: study[k] for k in details} == {**details, "age_years": 4}
    assert study["review"] is None


def test_bad_patient_details_are_400_and_store_nothing(alice_api: APIClient) -> None:
    response = alice_api.post(f"{API}/studies/", {"images": [upload_file()], "age_years": "old"}, format="multipart")
    assert response.status_code == 400 and "age_years" in response.json()
    assert not Study.objects.exists()


def test_a_colleagues_study_is_readable_by_id_with_its_review_but_not_listed(alice, clinic_a) -> None:
    from diagnosis.models import Role
    from tests.factories import make_member, token_client

    reviewer = make_member("rita", clinic_a, Role.REVIEWER)
    study = _done(intake.submit_files(alice, [upload_file()]).studies[0])
    reviews.review_study(reviewer, study, agrees=False, note="no")
    rita_api = token_client(reviewer)
    detail = rita_api.get(f"{API}/studies/{study.pk}/").json()
    assert detail["review"]["final_label"] == "PNEUMONIA" and detail["review"]["reviewer"] == "rita"
    assert detail["review"]["agrees"] is False
    assert rita_api.get(f"{API}/studies/").json()["count"] == 0


def test_a_reviewer_reviews_through_the_api(alice, clinic_a) -> None:
    from diagnosis.models import AuditEvent, Role
    from tests.factories import make_member, token_client

    rita_api = token_client(make_member("rita", clinic_a, Role.REVIEWER))
    pending = intake.submit_files(alice, [upload_file()]).studies[0]
    assert rita_api.post(f"{API}/studies/{pending.pk}/review/", {"decision": "agree"}).status_code == 409
    study = _done(intake.submit_files(alice, [upload_file()]).studies[0])
    assert rita_api.post(f"{API}/studies/{study.pk}/review/", {"decision": "maybe"}).status_code == 400
    response = rita_api.post(f"{API}/studies/{study.pk}/review/", {"decision": "disagree", "note": "consolidation"})
    assert response.status_code == 200
    assert response.json()["final_label"] == "PNEUMONIA" and response.json()["agrees"] is False
    assert AuditEvent.objects.filter(action="review", username="rita").count() == 1


def test_a_review_based_on_a_reading_that_changed_is_409_with_the_reading_now(alice, clinic_a) -> None:
    from diagnosis.models import Review, Role
    from tests.factories import make_member, token_client

    rita_api = token_client(make_member("rita", clinic_a, Role.REVIEWER))
    colin_api = token_client(make_member("colin", clinic_a, Role.REVIEWER))
    study = _done(intake.submit_files(alice, [upload_file()]).studies[0])
    url = f"{API}/studies/{study.pk}/review/"
    seen = rita_api.get(f"{API}/studies/{study.pk}/").json()["review"]
    assert seen is None
    assert colin_api.post(url, {"decision": "agree", "based_on": None}, format="json").status_code == 200
    conflict = rita_api.post(url, {"decision": "disagree", "based_on": None}, format="json")
    assert conflict.status_code == 409 and "colin saved a reading" in conflict.json()["detail"]
    now = conflict.json()["review"]
    assert now["reviewer"] == "colin" and now["agrees"] is True
    assert Review.objects.get().agrees is True
    replaced = rita_api.post(url, {"decision": "disagree", "based_on": now["updated"]}, format="json")
    assert replaced.status_code == 200 and replaced.json()["reviewer"] == "rita"
    assert rita_api.post(url, {"decision": "agree", "based_on": "soon"}, format="json").status_code == 400
