"""Branch isolation for Wagtail's generic admin views.

Wagtail checks permissions per model, not per object. A :class:`ScopedViewSetMixin`
viewset declares which objects a request may reach (``get_scoped_queryset``); every URL
of the viewset that names an object answers 404 for any other object, whatever the view
(edit, inspect, delete, history, usage, copy, revisions …), and the listing shows only
that queryset. Bulk actions and choosers use the same queryset.
"""

import functools

from django.contrib.admin.utils import unquote
from django.core.exceptions import ValidationError
from django.http import Http404
from django.urls import URLPattern

from .. import scope


def scoped_object_exists(queryset, pk):
    try:
        return queryset.filter(pk=unquote(str(pk))).exists()
    except (ValueError, TypeError, ValidationError):
        return False


def require_object_in_scope(view_func, get_scoped_queryset):
    @functools.wraps(view_func)
    def wrapped(request, *args, **kwargs):
        pk = kwargs.get("pk")
        if pk is not None and not scoped_object_exists(get_scoped_queryset(request), pk):
            raise Http404
        return view_func(request, *args, **kwargs)

    return wrapped


class ScopedViewSetMixin:
    """For snippet viewsets and chooser viewsets of models with branch-scoped objects."""

    def get_scoped_queryset(self, request):
        raise NotImplementedError

    def get_urlpatterns(self):
        return [
            URLPattern(
                pattern.pattern,
                require_object_in_scope(pattern.callback, self.get_scoped_queryset),
                pattern.default_args,
                pattern.name,
            )
            for pattern in super().get_urlpatterns()
        ]


class ViewerMixin:
    """Gives a view the request's :class:`~wagtail_clientdb.scope.Viewer`."""

    @property
    def viewer(self):
        return scope.viewer_for_request(self.request)


class ViewerFormMixin(ViewerMixin):
    """Passes the viewer to the form, whose choices and saving depend on it."""

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "viewer": self.viewer}
