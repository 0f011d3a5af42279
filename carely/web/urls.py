from django.urls import path

from carely.web import views

app_name = "web"
urlpatterns = [path("", views.dashboard, name="dashboard")]
