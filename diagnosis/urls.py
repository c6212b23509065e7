from django.urls import path

from diagnosis import clinic_views, locale_views, site_views, views

app_name = "diagnosis"
urlpatterns = [
    path("", views.home, name="home"),
    path("upload/", views.upload, name="upload"),
    path("history/", views.history, name="history"),
    path("history/export.csv", views.history_export, name="history_export"),
    path("studies/<uuid:study_id>/", views.study_detail, name="study"),
    path("studies/<uuid:study_id>/status/", views.study_status, name="study_status"),
    path("studies/<uuid:study_id>/report/", views.study_report, name="study_report"),
    path("studies/<uuid:study_id>/review/", views.study_review, name="study_review"),
    path("studies/<uuid:study_id>/files/<str:kind>/", views.study_file, name="study_file"),
    path("studies/<uuid:study_id>/resend/", views.study_resend, name="study_resend"),
    path("worklist/", clinic_views.worklist, name="worklist"),
    path("worklist/export.csv", clinic_views.worklist_export, name="worklist_export"),
    path("dashboard/", clinic_views.dashboard, name="dashboard"),
    path("audit/", clinic_views.audit_trail, name="audit"),
    path("audit/export.csv", clinic_views.audit_export, name="audit_export"),
    path("site/", site_views.site_page, name="site"),
    path("site/adopt/", site_views.site_adopt, name="site_adopt"),
    path("site/revert/", site_views.site_revert, name="site_revert"),
    path("people/", clinic_views.people_list, name="people"),
    path("people/<int:user_id>/role/", clinic_views.person_role, name="person_role"),
    path("people/<int:user_id>/active/", clinic_views.person_active, name="person_active"),
    path("people/<int:user_id>/reset/", clinic_views.person_reset, name="person_reset"),
    path("clinic/", locale_views.clinic_settings, name="clinic_settings"),
]
