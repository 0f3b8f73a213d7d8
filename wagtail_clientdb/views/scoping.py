"""Branch isolation for Wagtail's generic admin views.

Wagtail checks permissions per model, not per object. Every viewset of the app is a
:class:`ScopedViewSetMixin` viewset that declares which objects a viewer may reach
(``visible``); every URL of the viewset that names an object answers 404 for any other
object, whatever the view (edit, inspect, delete, history, usage, copy …), and the listing,
the chooser (all of its views) and the bulk actions (:mod:`.bulk_actions`) reach only those
objects; their pages read with the app's PostgreSQL settings (:mod:`..page_queries`).
Wagtail's own endpoints that do not go through a viewset (site history, tag
autocomplete) are scoped by the models' permission policies (:mod:`..permissions`,
:mod:`..models.log_entry`).
"""

import functools


from django.contrib.admin.utils import unquote
from django.core.exceptions import ValidationError
from django.http import Http404
from django.urls import URLPattern
from django.utils.functional import lazy
from django.utils.translation import gettext_lazy
from wagtail.log_actions import get_active_log_context
from wagtail.permissions import policy_registry
from wagtail.snippets.views import chooser as chooser_views
from wagtail.snippets.views import snippets as snippet_views
from wagtail.snippets.widgets import AdminSnippetChooser

from .. import scope
from ..filters import ClientDBFilterSet
from ..page_queries import page_view
from ..permissions import ANY_ACTION
from .common import LocalTimesHistoryView, LocalTimesInspectMixin, ProtectedDeleteView


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


def scoped_queryset(model, request):
    """The objects of ``model`` the request's user may reach in the admin now."""
    return model.snippet_viewset.get_scoped_queryset(request)


class ScopedChooserMixin:
    """Chooser views that list, search and return only the objects of the viewset's scope."""

    def get_object_list(self):
        return scoped_queryset(self.model_class, self.request)

    def can_create(self):
        # The app's choosers offer no creation form (a POST would fail without one).
        return self.get_creation_form_class() is not None and super().can_create()


class ScopedChooseView(ScopedChooserMixin, chooser_views.ChooseView):
    pass


class ScopedChooseResultsView(ScopedChooserMixin, chooser_views.ChooseResultsView):
    pass


class ScopedChosenView(ScopedChooserMixin, chooser_views.SnippetChosenView):
    def get_object(self, pk):
        return scoped_queryset(self.model_class, self.request).get(pk=pk)


class ScopedChosenMultipleView(ScopedChooserMixin, chooser_views.SnippetChosenMultipleView):
    def get_objects(self, pks):
        try:
            return list(scoped_queryset(self.model_class, self.request).filter(pk__in=pks))
        except (ValueError, TypeError, ValidationError):
            raise Http404


class ScopedCreateView(ScopedChooserMixin, chooser_views.SnippetCreateView):
    pass


def _worded(text, name):
    return str(text) % {"object": name}


#: ``text % {"object": name}``, worded when shown: in the reader's language.
worded_lazily = lazy(_worded, str)


class ScopedSnippetChooser(AdminSnippetChooser):
    """The chooser widget of the app's models: a form re-shown with an id someone posted
    names the object only if the acting admin user may reach it."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Wagtail words its buttons when the widget is made, once at start-up for the forms of
        # the edit handlers (in English): they are worded when shown instead.
        name = self.model._meta.verbose_name
        self.choose_one_text = worded_lazily(gettext_lazy("Choose %(object)s"), name)
        self.choose_another_text = worded_lazily(gettext_lazy("Choose another %(object)s"), name)
        self.link_to_chosen_text = worded_lazily(gettext_lazy("Edit this %(object)s"), name)

    def get_instance(self, value):
        if value is None or isinstance(value, self.model_class):
            return value
        user = get_active_log_context().user
        if user is None:
            return None
        reachable = policy_registry.get_by_type(self.model_class).instances_user_has_any_permission_for(user, ANY_ACTION)
        try:
            return reachable.filter(pk=value).first()
        except (ValueError, TypeError, ValidationError):
            return None


class ScopedChooserViewSet(chooser_views.SnippetChooserViewSet):
    base_widget_class = ScopedSnippetChooser
    choose_view_class = ScopedChooseView
    choose_results_view_class = ScopedChooseResultsView
    chosen_view_class = ScopedChosenView
    chosen_multiple_view_class = ScopedChosenMultipleView
    create_view_class = ScopedCreateView


class LocalTimesInspectView(LocalTimesInspectMixin, snippet_views.InspectView):
    pass


class ScopedViewSetMixin:
    """For the app's snippet viewsets: every object the viewset serves is one of
    ``visible(viewer)``, and only for users with a permission on the model. Their inspect and
    history views show times by the app's rule (:mod:`wagtail_clientdb.times`)."""

    chooser_viewset_class = ScopedChooserViewSet
    delete_view_class = ProtectedDeleteView
    inspect_view_class = LocalTimesInspectView
    history_view_class = LocalTimesHistoryView

    def visible(self, viewer):
        """The objects ``viewer`` may reach (all of them for models without branch rules)."""
        return self.model._default_manager.all()

    def get_scoped_queryset(self, request):
        if not policy_registry.get_by_type(self.model).user_has_any_permission(request.user, ANY_ACTION):
            return self.model._default_manager.none()
        return self.visible(scope.viewer_for_request(request))

    def get_queryset(self, request):
        return self.get_scoped_queryset(request)

    def get_index_view_kwargs(self, **kwargs):
        # Filters made from ``list_filter`` name yes/no values in the reader's language.
        return super().get_index_view_kwargs(base_filterset_class=ClientDBFilterSet, **kwargs)

    @property
    def breadcrumbs_items(self):
        # Wagtail words "Home" once, when the views are made at start-up (in English): it is
        # worded when shown instead.
        home, *rest = super().breadcrumbs_items
        return [{**home, "label": gettext_lazy("Home")}, *rest]

    def get_urlpatterns(self):
        return [
            URLPattern(
                pattern.pattern,
                page_view(require_object_in_scope(pattern.callback, self.get_scoped_queryset)),
                pattern.default_args,
                pattern.name,
            )
            for pattern in super().get_urlpatterns()
        ]
