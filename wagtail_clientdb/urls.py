from django.urls import path

from .views.branch_switcher import switch_branch

app_name = "wagtail_clientdb"

urlpatterns = [
    path("switch-branch/", switch_branch, name="switch_branch"),
]
