"""The Idempotency-Key's edges (diagnosis.api.idempotency), each found by mutation testing: every value and every
file's content is in a request's fingerprint; a lease exactly LEASE_SECONDS old is taken over; a retry never takes
over a key answered since it read it; a holder writes on its own key only."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from rest_framework.test import APIClient, APIRequestFactory

from diagnosis.api import idempotency
from diagnosis.models import Batch, IdempotentResponse, Study
from tests import images
from tests.factories import upload_file

pytestmark = pytest.mark.django_db
API = "/api/v1/studies/"


def _post(client: APIClient, key: str, **data: Any) -> Any:
    return client.post(API, data, format="multipart", headers={"Idempotency-Key": key})


def test_an_earlier_value_of_a_repeated_field_is_part_of_the_request(alice_api: APIClient) -> None:
    first = _post(alice_api, "k1", images=[upload_file()], patient_ref=["P-1", "P-9"])
    again = _post(alice_api, "k1", images=[upload_file()], patient_ref=["P-2", "P-9"])
    assert first.status_code == 202 and again.status_code == 422, again.content


def test_a_files_content_is_part_of_the_request(alice_api: APIClient) -> None:
    first = _post(alice_api, "k2", images=[upload_file("x.png", images.png(320, 256))])
    again = _post(alice_api, "k2", images=[upload_file("x.png", images.png(321, 256))])
    assert first.status_code == 202 and again.status_code == 422, again.content
    assert Study.objects.count() == 1


def _record(owner: User, key: str, lease: Any, status_code: int = 0) -> IdempotentResponse:
    return IdempotentResponse.objects.create(
        owner=owner, key=key, fingerprint="f", status_code=status_code, body={}, lease=lease
    )


def test_a_lease_exactly_lease_seconds_old_is_taken_over(alice: User, monkeypatch: pytest.MonkeyPatch) -> None:
    leased = timezone.now() - timedelta(hours=1)
    record = _record(alice, "k3", leased)
    monkeypatch.setattr(
        idempotency.timezone, "now", lambda: leased + timedelta(seconds=idempotency.LEASE_SECONDS, microseconds=-1)
    )
    assert not idempotency._take_over(record)
    monkeypatch.setattr(idempotency.timezone, "now", lambda: leased + timedelta(seconds=idempotency.LEASE_SECONDS))
    assert idempotency._take_over(record)


def test_a_retry_never_takes_over_a_key_answered_since_it_read_it(alice: User) -> None:
    leased = timezone.now() - timedelta(hours=1)
    read = _record(alice, "k4", leased)  # what a retry read: no answer, a lease long run out
    IdempotentResponse.objects.filter(pk=read.pk).update(status_code=202, body={"batch": "b"})  # answered meanwhile
    assert not idempotency._take_over(read)
    kept = IdempotentResponse.objects.get(pk=read.pk)
    assert (kept.status_code, kept.lease) == (202, leased)


def test_a_holder_answers_on_its_own_key_only(alice: User, bob: User) -> None:
    lease = timezone.now()
    mine, theirs = _record(alice, "k5", lease), _record(bob, "k5", lease)  # the same lease time: one microsecond
    assert idempotency.Held(mine).answer(202, {"batch": "mine"})
    theirs.refresh_from_db()
    assert (theirs.status_code, theirs.body) == (0, {})


def test_a_lease_is_renewed_at_most_every_renew_seconds(alice: User, monkeypatch: pytest.MonkeyPatch) -> None:
    leased = timezone.now() - timedelta(seconds=5)
    held = idempotency.Held(_record(alice, "k6", leased))
    clock = held.renewed
    monkeypatch.setattr(idempotency.time, "monotonic", lambda: clock + idempotency.RENEW_SECONDS - 0.001)
    held.renew()  # too soon: the row is left alone
    assert IdempotentResponse.objects.get(owner=alice, key="k6").lease == leased
    monkeypatch.setattr(idempotency.time, "monotonic", lambda: clock + idempotency.RENEW_SECONDS)
    held.renew()
    renewed = IdempotentResponse.objects.get(owner=alice, key="k6").lease
    assert renewed > leased and held.record.lease == renewed


def test_a_bound_batch_is_the_one_a_retry_resumes(alice: User) -> None:
    batch = Batch.objects.create(owner=alice)
    request = APIRequestFactory().post(API)
    setattr(request, idempotency._RECORD, idempotency.Held(_record(alice, "k7", timezone.now())))
    assert idempotency.resumed_batch(request) is None
    idempotency.bind(request, batch)
    assert idempotency.resumed_batch(request) == batch
    assert IdempotentResponse.objects.get(owner=alice, key="k7").batch == batch
