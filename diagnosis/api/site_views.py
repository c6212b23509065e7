"""The site's own evidence over the API: its performance, and the operating point (reviewers read; admins adopt)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from diagnosis.access import require_membership
from diagnosis.api.permissions import IsClinicAdmin, IsClinicReviewer, ReadReviewerWriteAdmin
from diagnosis.api.schema import READ, errors
from diagnosis.api.throttles import UserRateThrottle
from diagnosis.audit import Origin
from diagnosis.models import NOTE_MAX_LENGTH, printable
from diagnosis.site import operating_points, performance
from diagnosis.site.presenting import point_dict, standing_dict

DAYS = OpenApiParameter("days", OpenApiTypes.INT, description="Only results of the last N days (default: all)")


class AdoptSerializer(serializers.Serializer[Any]):
    target_sensitivity = serializers.FloatField(min_value=0.5, max_value=0.995)
    reason = serializers.CharField(max_length=NOTE_MAX_LENGTH, validators=[printable])


class RevertSerializer(serializers.Serializer[Any]):
    reason = serializers.CharField(max_length=NOTE_MAX_LENGTH, validators=[printable])


class DaysSerializer(serializers.Serializer[Any]):
    days = serializers.IntegerField(min_value=1, max_value=3650, required=False)


class SitePerformanceView(APIView):
    """Sensitivity, specificity, PPV and NPV with 95 % Wilson intervals, AUC, ECE, the ROC curve and a
    reliability diagram, per source of local ground truth, at the operating point in force; the model card's
    figures beside them."""

    permission_classes = [IsClinicReviewer]
    throttle_classes = [UserRateThrottle]

    @extend_schema(parameters=[DAYS], responses={200: OpenApiTypes.OBJECT, **errors(400, 401, 403, 429)})
    def get(self, request: Request) -> Response:
        query = DaysSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        clinic = require_membership(request.user).clinic
        return Response(performance.measure(clinic, query.validated_data.get("days")).as_dict())


class OperatingPointView(APIView):
    """GET: the point in force, its history, and what the clinic's own evidence proposes. POST (clinic admin):
    adopt the proposal for `target_sensitivity`, with a reason; 422 when the evidence is not enough."""

    permission_classes = [ReadReviewerWriteAdmin]
    throttle_classes = [UserRateThrottle]

    @extend_schema(
        parameters=[OpenApiParameter("target_sensitivity", OpenApiTypes.FLOAT, description="Propose for this")],
        responses={200: OpenApiTypes.OBJECT, **errors(400, *READ)},
    )
    def get(self, request: Request) -> Response:
        clinic = require_membership(request.user).clinic
        target = request.query_params.get("target_sensitivity")
        if target is not None:
            check = AdoptSerializer(data={"target_sensitivity": target, "reason": "-"})
            check.is_valid(raise_exception=True)
        wanted = check.validated_data["target_sensitivity"] if target is not None else None
        return Response(standing_dict(operating_points.standing(clinic, wanted)))

    @extend_schema(
        request=AdoptSerializer,
        responses={
            201: OpenApiTypes.OBJECT,
            **errors(
                400, 401, 403, 429, 422, e422="Not enough local evidence to adopt (`detail` says what is missing)."
            ),
        },
    )
    def post(self, request: Request) -> Response:
        form = AdoptSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            row = operating_points.adopt(
                user=request.user,
                target_sensitivity=form.validated_data["target_sensitivity"],
                reason=form.validated_data["reason"],
                origin=Origin.of(request),
            )
        except operating_points.NotEnoughEvidence as exc:
            return Response({"detail": str(exc)}, status=422)
        return Response({"adopted": point_dict(row)}, status=201)


class OperatingPointRevertView(APIView):
    """Undo the last change (clinic admin): the version before is reinstated, or the model card's point."""

    permission_classes = [IsClinicAdmin]
    throttle_classes = [UserRateThrottle]

    @extend_schema(request=RevertSerializer, responses={200: OpenApiTypes.OBJECT, **errors(400, 401, 403, 429)})
    def post(self, request: Request) -> Response:
        form = RevertSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        row = operating_points.revert(
            user=request.user, reason=form.validated_data["reason"], origin=Origin.of(request)
        )
        return Response({"in_force": point_dict(row)})
