from django.urls import path

from carely.web import members, views

app_name = "web"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("language/", views.set_language, name="set_language"),
    path("organisation/switch/", views.organisation_switch, name="organisation_switch"),
    path("members/", members.member_list, name="members"),
    path("members/<int:membership_id>/", members.member_detail, name="member_detail"),
]
