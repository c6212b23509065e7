from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.permissions import AllowAny
from rest_framework.routers import SimpleRouter

from diagnosis.api import site_views, views

app_name = "api"
router = SimpleRouter()
router.register("studies", views.StudyViewSet, basename="study")

urlpatterns = [
    path("studies/<uuid:pk>/review/", views.ReviewView.as_view(), name="study-review"),
    path("studies/<uuid:pk>/<str:kind>/", views.StudyFileView.as_view(), name="study-file"),
    path("batches/<uuid:pk>/", views.BatchView.as_view(), name="batch-detail"),
    path("site/performance/", site_views.SitePerformanceView.as_view(), name="site-performance"),
    path("site/operating-point/", site_views.OperatingPointView.as_view(), name="site-operating-point"),
    path(
        "site/operating-point/revert/",
        site_views.OperatingPointRevertView.as_view(),
        name="site-operating-point-revert",
    ),
    # The schema and its docs describe the API, not anyone's data: readable without a token. The split view serves
    # Swagger UI's initialiser as a script file, so the strict Content-Security-Policy (no inline script) holds.
    path("schema/", SpectacularAPIView.as_view(permission_classes=[AllowAny]), name="schema"),
    path(
        "docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema", permission_classes=[AllowAny]), name="docs"
    ),
    *router.urls,
    # Anything else under the API, such as an id that is not a UUID: a JSON 404, not Django's HTML page.
    re_path(r"", views.not_found, name="not-found"),
]
