from django.shortcuts import get_object_or_404, redirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from .. import scope


@require_POST
def switch_branch(request):
    """Make another of the user's branches the current branch of the admin."""
    branch = get_object_or_404(scope.branch_choices_for(request.user), pk=request.POST.get("branch") or 0)
    scope.choose_branch(request, branch)
    next_url = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        next_url = "wagtailadmin_home"
    return redirect(next_url)
