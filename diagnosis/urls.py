from django.urls import path

from diagnosis import views

app_name = "diagnosis"
urlpatterns = [
    path("", views.home, name="home"),
    path("upload/", views.upload, name="upload"),
    path("history/", views.history, name="history"),
    path("studies/<uuid:study_id>/", views.study_detail, name="study"),
    path("studies/<uuid:study_id>/status/", views.study_status, name="study_status"),
    path("studies/<uuid:study_id>/files/<str:kind>/", views.study_file, name="study_file"),
]
