"""REST API v1: token-authenticated; a member reads its clinic's studies and lists its own submissions."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, cast

from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.http import FileResponse, HttpRequest, JsonResponse
from django.utils.translation import gettext
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from diagnosis import intake, reviews, selectors, study_details, viewing
from diagnosis.api import idempotency
from diagnosis.api.filters import StudyFilter
from diagnosis.api.parsers import MultiPartParser
from diagnosis.api.permissions import IsClinicReviewer
from diagnosis.api.schema import READ, errors
from diagnosis.api.serializers import (
    BatchSerializer,
    ReviewConflictSerializer,
    ReviewInputSerializer,
    ReviewSerializer,
    StudySerializer,
    SubmitResponseSerializer,
    SubmitSerializer,
)
from diagnosis.api.throttles import ScopedRateThrottle, UserRateThrottle
from diagnosis.audit import Origin
from diagnosis.models import Study
from diagnosis.site import acceptance


def not_found(request: HttpRequest) -> JsonResponse:
    """404 for a path under the API that names nothing: JSON, as every other answer of the API."""
    if request.path.endswith("/"):
        return JsonResponse({"detail": gettext("Not found.")}, status=404)
    return JsonResponse({"detail": gettext("Not found. API paths end with a slash.")}, status=404)


def _user(request: Request) -> User:
    """IsClinicMember (the default permission) has already refused anonymous callers."""
    return cast(User, request.user)


@extend_schema_view(list=extend_schema(responses={200: StudySerializer(many=True), **errors(400, *READ)}))
class StudyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[Study]):
    serializer_class = StudySerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = StudyFilter
    parser_classes = [MultiPartParser]
    throttle_classes = [UserRateThrottle]

    def get_queryset(self) -> QuerySet[Study]:
        """The list is the caller's own submissions; any study of the clinic can be fetched by id."""
        if self.action == "list":
            return selectors.history(self.request.user)
        return selectors.studies_for(self.request.user)

    @extend_schema(responses={200: StudySerializer, **errors(*READ)})
    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        study = viewing.view_study(request.user, pk, Origin.of(request), via="api")
        return Response(self.get_serializer(study).data)

    def get_throttles(self) -> list[Any]:
        if self.action == "create":
            self.throttle_scope = "submissions"
            return [ScopedRateThrottle()]
        return super().get_throttles()

    @extend_schema(
        request=SubmitSerializer,
        responses={
            202: SubmitResponseSerializer,
            **errors(
                400, 401, 403, 409, 413, 415, 422, 429, e409="A request with this Idempotency-Key is still running."
            ),
        },
        parameters=[idempotency.PARAMETER],
    )
    @idempotency.idempotent
    def create(self, request: Request) -> Response:
        data: dict[str, Any] = {"images": request.FILES.getlist("images")}
        fields = cast(Mapping[str, Any], request.data)
        data.update({k: fields[k] for k in study_details.DETAIL_FIELDS if k in fields})
        if "archive" in request.FILES:
            data["archive"] = request.FILES["archive"]
        form = SubmitSerializer(data=data)
        form.is_valid(raise_exception=True)
        if form.details().reference_label:
            acceptance.require_labeller(_user(request))
        batch = idempotency.resumed_batch(request) or intake.new_batch(_user(request))
        idempotency.bind(request, batch)
        batch, submission = intake.submit_batch(
            _user(request),
            form.validated_data.get("images") or [],
            form.validated_data.get("archive"),
            details=form.details(),
            origin=Origin.of(request),
            batch=batch,
            progress=lambda: idempotency.renew(request),
        )
        answer = {"batch": batch, "studies": submission.studies, "errors": submission.errors}
        return Response(SubmitResponseSerializer(answer, context={"request": request}).data, status=202)


class StudyFileView(APIView):
    throttle_classes = [UserRateThrottle]

    @extend_schema(
        operation_id="studies_file",
        responses={(200, "image/*"): OpenApiTypes.BINARY, **errors(*READ)},
        parameters=[OpenApiParameter("kind", OpenApiTypes.STR, OpenApiParameter.PATH, enum=sorted(viewing.API_KINDS))],
    )
    def get(self, request: Request, pk: uuid.UUID, kind: str) -> FileResponse:
        return viewing.serve_file(request.user, pk, kind, Origin.of(request), allowed=viewing.API_KINDS)


class BatchView(APIView):
    throttle_classes = [UserRateThrottle]

    @extend_schema(responses={200: BatchSerializer, **errors(*READ)})
    def get(self, request: Request, pk: uuid.UUID) -> Response:
        batch = selectors.get_batch(request.user, pk)
        return Response(
            BatchSerializer({"id": batch.pk, "created": batch.created, **selectors.batch_progress(batch)}).data
        )


class ReviewView(APIView):
    """A reviewer records or revises their reading of a study of the clinic (audited like the page)."""

    permission_classes = [IsClinicReviewer]
    throttle_classes = [UserRateThrottle]

    @extend_schema(
        request=ReviewInputSerializer,
        responses={200: ReviewSerializer, 409: ReviewConflictSerializer, **errors(400, *READ)},
    )
    def post(self, request: Request, pk: uuid.UUID) -> Response:
        study = selectors.get_study(request.user, pk)
        form = ReviewInputSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        agrees = data["decision"] == "agree"
        based_on = data.get("based_on", reviews.Unchecked.ANY)
        try:
            review = reviews.review_study(
                _user(request), study, agrees=agrees, note=data["note"], origin=Origin.of(request), based_on=based_on
            )
        except reviews.ReviewConflict as exc:
            current = ReviewSerializer(exc.current).data if exc.current else None
            return Response({"detail": str(exc), "review": current}, status=409)
        except reviews.ReviewError as exc:
            return Response({"detail": str(exc), "review": None}, status=409)
        return Response(ReviewSerializer(review).data)
