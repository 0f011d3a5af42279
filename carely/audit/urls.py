from django.urls import path

from carely.audit import views

app_name = "audit"
urlpatterns = [
    path("access-log/", views.access_log, name="access_log"),
    path("access-log.csv", views.access_log_csv, name="access_log_csv"),
]
