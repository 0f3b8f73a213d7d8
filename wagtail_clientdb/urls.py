from django.urls import path

from .page_queries import page_view
from .views.branch_switcher import switch_branch
from .views.history import CustomerHistoryView

app_name = "wagtail_clientdb"

urlpatterns = [
    path("switch-branch/", switch_branch, name="switch_branch"),
    path("history/", page_view(CustomerHistoryView.as_view()), name="history"),
    path("history/results/", page_view(CustomerHistoryView.as_view(results_only=True)), name="history_results"),
]
