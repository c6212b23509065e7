"""Schema-driven fuzzing of the API (schemathesis): whatever it sends, the answer is never a 5xx, its status is one
the schema lists for that endpoint, and its body matches the schema (a red-team pass found every study's blank
`sex` outside the schema's enum, and 400, 404 and 409 missing from it).

The caller is a reviewer of a clinic that holds a judged study and a batch of the caller's, so that about half
of the generated ids are real ones (the 200 paths run, not only the 404s), and half of the submissions carry
real images or a valid zip. Marked `fuzz`: `make test` and CI run it; `-m "not fuzz"` leaves it out locally.
"""

import random
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.cache import cache
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance, status_code_conformance

from diagnosis.models import Batch, Clinic, Role
from tests import factories, images
from xrayweb.wsgi import application

# STOW-RS takes multipart/related DICOM, which schemathesis cannot generate; tests/diagnosis/api/test_stow.py
# sends it malformed bodies, wrong types and mixed parts instead.
schema = schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", application).exclude(path_regex="^/dicomweb/")
EXAMPLES = 80
FILE_KINDS = ["image", "thumbnail", "heatmap", "overlay"]


@pytest.fixture
def keep_test_connection():
    """As Django's test client does: the in-process WSGI app must not close the test transaction's connection."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def world(clinic_a: Clinic, keep_test_connection, settings) -> Iterator[dict[str, Any]]:
    """A reviewer of clinic A with an API token, a judged study of a colleague and a batch of the reviewer's."""
    from rest_framework.authtoken.models import Token

    rates = {"user": "100000/min", "submissions": "100000/min"}  # the fuzzer is not testing the throttle
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}

    reviewer = factories.make_member("fuzz-reviewer", clinic_a, Role.REVIEWER)
    colleague = factories.make_member("fuzz-clinician", clinic_a)
    study = factories.judged_study(colleague)
    batch = Batch.objects.create(owner=reviewer)
    yield {
        "headers": {"Authorization": f"Token {Token.objects.create(user=reviewer).key}"},
        "ids": {"/api/v1/batches/{id}/": str(batch.pk)},
        "study": str(study.pk),
    }
    cache.clear()  # the throttles' history: the next test's user may get the same id


def _seed(case: Any, world: dict[str, Any]) -> None:
    """Half of the cases, chosen from the generated values themselves (so a failure replays), get real data."""
    coin = random.Random(repr((case.path_parameters, case.body))).random() < 0.5
    if not coin:
        return
    if case.path_parameters and "id" in case.path_parameters:
        case.path_parameters["id"] = world["ids"].get(case.path, world["study"])
        if "kind" in case.path_parameters:
            case.path_parameters["kind"] = random.Random(case.path_parameters["kind"]).choice(FILE_KINDS)
    if case.method.upper() == "POST" and case.path == "/api/v1/studies/" and isinstance(case.body, dict):
        if case.body.pop("archive", None) is not None:
            case.body.pop("images", None)
            case.body["archive"] = factories.zip_of({"a.png": images.png(), "dir/b.jpeg": images.jpeg()}).getvalue()
        else:
            case.body["images"] = [images.png(), images.jpeg()]


@pytest.mark.fuzz
@pytest.mark.django_db
@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_never_answers_5xx_and_answers_as_its_schema_says(case, world) -> None:
    _seed(case, world)
    response = case.call(headers=world["headers"])
    checks = [not_a_server_error, status_code_conformance, response_schema_conformance]
    case.validate_response(response, checks=checks)
    assert response.status_code < 500
