"""The "Possible duplicates" list: pairs of customers the duplicate scan found
(:mod:`wagtail_clientdb.duplicates`), each listed only to viewers who see both customers, for
reasons they may know; "Not a duplicate" dismisses a pair for good."""

from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.functional import cached_property
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST
from wagtail.admin import messages
from wagtail.admin.ui.tables import Column, TitleColumn
from wagtail.permissions import policy_registry
from wagtail.snippets.views import snippets as snippet_views

from .. import duplicates, overrides, scope
from ..contact import format_phone
from ..models import Customer, CustomerOverride, DuplicatePair, DuplicateRule
from .common import MomentColumn, PostButton, PostButtonsColumn, redirect_back
from .merges import merge_url
from .scoping import ScopedViewSetMixin


def as_seen(customer):
    """A customer of a pair as the viewer's branch sees it (local values prefetched by the viewset)."""
    local = getattr(customer, "branch_local_values", None)
    return overrides.EffectiveCustomer(customer, local[0] if local else None)


def describe(customer):
    """A customer of a pair as the viewer sees it: name, and email and phone to tell people apart."""
    return describe_effective(as_seen(customer))


def describe_effective(seen):
    """Name, and email and phone, of a customer as a branch sees it (:class:`~..overrides.EffectiveCustomer`)."""
    name = " ".join(part for part in (seen.first_name, seen.last_name) if part)
    details = [seen.email, format_phone(seen.phone, seen.phone_raw)]
    details = [detail for detail in details if detail]
    if not name:
        return ", ".join(details) or str(seen.customer)
    return f"{name} ({', '.join(details)})" if details else name


def reason_texts(reasons):
    """The reasons of a pair, each with the name similarity and where it was found."""
    texts = []
    for reason in sorted(reasons, key=lambda r: (duplicates.RULES.index(r.rule), r.branch_id or 0)):
        text = str(DuplicateRule(reason.rule).label)
        if reason.similarity is not None:
            text = _("%(reason)s (names %(percent)s %% alike)") % {"reason": text, "percent": round(reason.similarity * 100)}
        if reason.branch_id:
            text = _("%(reason)s, in the local values of %(branch)s") % {"reason": text, "branch": reason.branch}
        texts.append(text)
    return "; ".join(texts)


def inspect_url(customer):
    return reverse(Customer.snippet_viewset.get_url_name("inspect"), args=(customer.pk,))


class DuplicatePairIndexView(snippet_views.IndexView):
    @cached_property
    def no_results_message(self):
        if self.is_searching or self.is_filtering:
            return _("No possible duplicates match.")
        return _(
            "No possible duplicates. The list is filled by the duplicate scan, which runs in the background "
            "(the clientdb_find_duplicates command or task)."
        )

    @cached_property
    def may_dismiss(self):
        return policy_registry.get_by_type(DuplicatePair).may_dismiss(self.request.user)

    @cached_property
    def may_merge(self):
        policy = policy_registry.get_by_type(Customer)
        return policy.user_has_permission(self.request.user, "change") and policy.user_has_permission(self.request.user, "delete")

    def dismiss_buttons(self, pair):
        buttons = []
        if self.may_merge:
            buttons.append(PostButton(_("Merge"), merge_url([pair.customer_a_id, pair.customer_b_id]), is_link=True))
        if self.may_dismiss:
            url = reverse(DuplicatePair.snippet_viewset.get_url_name("dismiss"), args=(pair.pk,))
            buttons.append(PostButton(_("Not a duplicate"), url))
        return buttons

    @cached_property
    def columns(self):
        # No bulk actions (Wagtail's checkbox column is left out): a pair is judged one at a time.
        return [
            TitleColumn(
                "customer_a", label=gettext_lazy("Customer"), accessor=lambda pair: describe(pair.customer_a),
                get_url=lambda pair: inspect_url(pair.customer_a),
            ),
            TitleColumn(
                "customer_b", label=gettext_lazy("May be the same person as"),
                accessor=lambda pair: describe(pair.customer_b), get_url=lambda pair: inspect_url(pair.customer_b),
            ),
            Column("reasons", label=gettext_lazy("Why"), accessor=lambda pair: reason_texts(pair.shown_reasons)),
            MomentColumn("found_at", label=gettext_lazy("Found"), sort_key="found_at"),
            PostButtonsColumn("actions", self.dismiss_buttons, label=gettext_lazy("Actions")),
        ]


class DuplicatePairViewSet(ScopedViewSetMixin, snippet_views.SnippetViewSet):
    model = DuplicatePair
    index_view_class = DuplicatePairIndexView
    index_template_name = "wagtail_clientdb/duplicates/index.html"
    icon = "copy"
    menu_label = gettext_lazy("Possible duplicates")
    menu_order = 150
    copy_view_enabled = False
    inspect_view_enabled = False
    ordering = ["-score", "-found_at", "pk"]
    list_display = ["customer_a", "customer_b", "found_at"]
    search_fields = [
        f"{customer}__{name}" for customer in ("customer_a", "customer_b") for name in ("first_name", "last_name", "email")
    ]

    def visible(self, viewer):
        return duplicates.visible_pairs(viewer)

    def get_queryset(self, request):
        viewer = scope.viewer_for_request(request)
        local = CustomerOverride.objects.filter(branch=viewer.branch) if viewer.branch else CustomerOverride.objects.none()
        return (
            self.get_scoped_queryset(request)
            .select_related("customer_a", "customer_b")
            .prefetch_related(
                Prefetch("reasons", queryset=duplicates.visible_reasons(viewer).select_related("branch"), to_attr="shown_reasons"),
                Prefetch("customer_a__overrides", queryset=local, to_attr="branch_local_values"),
                Prefetch("customer_b__overrides", queryset=local, to_attr="branch_local_values"),
            )
        )

    def get_permissions_to_register(self):
        return super().get_permissions_to_register().none()

    def get_urlpatterns(self):
        return super().get_urlpatterns() + [path("not-a-duplicate/<int:pk>/", self.dismiss_view, name="dismiss")]

    @property
    def dismiss_view(self):
        @require_POST
        def view(request, pk):
            if not policy_registry.get_by_type(DuplicatePair).may_dismiss(request.user):
                raise PermissionDenied
            pair = get_object_or_404(self.get_queryset(request), pk=pk)
            if duplicates.dismiss(pair, request.user):
                messages.success(
                    request,
                    _("“%(a)s” and “%(b)s” are not listed as possible duplicates any more.")
                    % {"a": describe(pair.customer_a), "b": describe(pair.customer_b)},
                )
            return redirect_back(request, reverse(self.get_url_name("list")))

        return view
