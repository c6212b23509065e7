"""REST API v1: token-authenticated; a member reads its clinic's studies and lists its own submissions."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, cast

from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.http import FileResponse, Http404
from django.urls import reverse
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, viewsets
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle, UserRateThrottle
from rest_framework.views import APIView

from diagnosis import selectors, services
from diagnosis.access import Origin
from diagnosis.api.filters import StudyFilter
from diagnosis.api.permissions import IsClinicReviewer
from diagnosis.api.serializers import (
    BatchSerializer,
    ReviewInputSerializer,
    ReviewSerializer,
    StudySerializer,
    SubmitResponseSerializer,
    SubmitSerializer,
)
from diagnosis.models import Study
from diagnosis.views import open_study_file

IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description="Retrying a POST with the same key returns the first answer instead of creating duplicates.",
)


def _user(request: Request) -> User:
    """IsClinicMember (the default permission) has already refused anonymous callers."""
    return cast(User, request.user)


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

    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        study = services.view_study(request.user, pk, Origin.of(request), via="api")
        return Response(self.get_serializer(study).data)

    def get_throttles(self) -> list[Any]:
        if self.action == "create":
            self.throttle_scope = "submissions"
            return [ScopedRateThrottle()]
        return super().get_throttles()

    @extend_schema(request=SubmitSerializer, responses={202: SubmitResponseSerializer}, parameters=[IDEMPOTENCY_HEADER])
    def create(self, request: Request) -> Response:
        data: dict[str, Any] = {"images": request.FILES.getlist("images")}
        fields = cast(Mapping[str, Any], request.data)
        data.update({k: fields[k] for k in services.DETAIL_FIELDS if k in fields})
        if "archive" in request.FILES:
            data["archive"] = request.FILES["archive"]
        form = SubmitSerializer(data=data)
        form.is_valid(raise_exception=True)
        key = request.headers.get("Idempotency-Key", "").strip()[:200]

        def produce() -> tuple[int, dict[str, Any]]:
            batch, sub = services.submit_batch(
                _user(request),
                form.validated_data.get("images") or [],
                form.validated_data.get("archive"),
                form.details(),
                Origin.of(request),
            )
            studies = [
                {
                    "id": str(s.pk),
                    "status": s.job.status,
                    "file_name": s.original_name,
                    # Just the URL: serialising the whole study would query its result once per file.
                    "url": request.build_absolute_uri(reverse("api:study-detail", kwargs={"pk": s.pk})),
                }
                for s in sub.studies
            ]
            errors = [{"file_name": e.file_name, "error": e.message} for e in sub.errors]
            return 202, {"batch": str(batch.pk), "studies": studies, "errors": errors}

        status, body = services.replay_or_store(_user(request), key, produce) if key else produce()
        return Response(body, status=status)


class StudyFileView(APIView):
    throttle_classes = [UserRateThrottle]

    @extend_schema(operation_id="studies_file", responses={(200, "image/*"): OpenApiTypes.BINARY})
    def get(self, request: Request, pk: uuid.UUID, kind: str) -> FileResponse:
        if kind not in ("image", "heatmap", "overlay"):
            raise Http404("Unknown file.")
        return open_study_file(services.view_file(request.user, pk, kind, Origin.of(request)), kind)


class BatchView(APIView):
    throttle_classes = [UserRateThrottle]

    @extend_schema(responses=BatchSerializer)
    def get(self, request: Request, pk: uuid.UUID) -> Response:
        batch = selectors.get_batch(request.user, pk)
        return Response(
            BatchSerializer({"id": batch.pk, "created": batch.created, **selectors.batch_progress(batch)}).data
        )


class ReviewView(APIView):
    """A reviewer records or revises their reading of a study of the clinic (audited like the page)."""

    permission_classes = [IsClinicReviewer]
    throttle_classes = [UserRateThrottle]

    @extend_schema(request=ReviewInputSerializer, responses={200: ReviewSerializer, 409: None})
    def post(self, request: Request, pk: uuid.UUID) -> Response:
        study = selectors.get_study(request.user, pk)
        form = ReviewInputSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        agrees = form.validated_data["decision"] == "agree"
        try:
            review = services.review_study(
                _user(request), study, agrees, form.validated_data["note"], Origin.of(request)
            )
        except services.ReviewError as exc:
            return Response({"detail": str(exc)}, status=409)
        return Response(ReviewSerializer(review).data)
