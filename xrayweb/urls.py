from django.conf import settings
from django.contrib import admin
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import include, path

from diagnosis.api import dicomweb
from diagnosis.clinic_views import SetPasswordView
from diagnosis.locale_views import javascript_catalog, set_language


def no_self_service_reset(request: HttpRequest) -> HttpResponse:
    """Without e-mail a reset link could only go to a log: ask the clinic admin (People, Reset access) instead."""
    raise Http404("Password reset by e-mail is not available here; ask your clinic admin for a new link.")


handler500 = "diagnosis.errors.server_error"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("language/", set_language, name="set_language"),
    path("jsi18n/", javascript_catalog, name="javascript-catalog"),
    *(
        []
        if settings.PASSWORD_RESET_BY_EMAIL
        else [
            path("accounts/password_reset/", no_self_service_reset, name="password_reset"),
            path("accounts/password_reset/done/", no_self_service_reset, name="password_reset_done"),
        ]
    ),
    # Before Django's own: the set-password link refuses a deactivated account.
    path("accounts/reset/<uidb64>/<token>/", SetPasswordView.as_view(), name="password_reset_confirm"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/v1/", include("diagnosis.api.urls")),
    path(
        "dicomweb/",
        include(
            (
                [
                    path("studies", dicomweb.StowView.as_view(), name="stow"),
                    path("studies/<str:study_uid>", dicomweb.StowStudyView.as_view(), name="stow-study"),
                ],
                "dicomweb",
            )
        ),
    ),
    path("", include("diagnosis.urls")),
]
