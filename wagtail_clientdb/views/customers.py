import time
from types import SimpleNamespace

from django import forms
from django.contrib.admin.utils import quote
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied
from django.core.paginator import InvalidPage
from django.http import Http404, JsonResponse
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.text import capfirst
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from django.views import View
from wagtail.admin import messages
from wagtail.admin.forms.choosers import BaseFilterForm
from wagtail.admin.panels import FieldPanel, FieldRowPanel, ObjectList
from wagtail.admin.ui.tables import Column, NumberColumn, TitleColumn
from wagtail.admin.widgets.button import Button, ButtonWithDropdown, HeaderButton
from wagtail.snippets.views import snippets as snippet_views

from .. import archive, attribute_types, attributes, audit, booking_blocks, conf, deletion, export, exports, groups, listing, markup, overrides, scope, times
from ..contact import format_phone
from ..filters import CustomerFilterSet
from ..forms.appointments import STAFF_NAME_FIELDS
from ..forms.customers import CustomerForm, FoundMeanwhile
from ..models import Appointment, AppointmentStatus, AttributeTarget, ClientDBSettings, Customer, DeletionStatus, DuplicateRule, Segment
from ..models.customer import NAME_FIELDS, name_of
from ..page_queries import page_view
from ..panels import AttributeFieldsPanel, ClientDBTabbedInterface
from ..search import customer_search_q
from . import duplicates as duplicates_view
from . import imports
from .archive import ArchiveView
from .booking_blocks import BookingBlockView
from .bulk_action_jobs import BulkActionJobView
from .common import (
    CheckboxColumn,
    LocalTimesHistoryView,
    MomentColumn,
    RowURLsMixin,
    SaveRefusalMixin,
    TextCellMixin,
    TextColumn,
    TitleCellMixin,
    ViewerFormMixin,
    ViewerMixin,
    with_status_tags,
)
from .merges import MergeUndoView, MergeView, merges_panel
from .personal_data import PersonalDataView
from .scoping import (
    ScopedChooseResultsView,
    ScopedChooserViewSet,
    ScopedChooseView,
    ScopedChosenView,
    ScopedSnippetChooser,
    ScopedViewSetMixin,
)


def listed_name(row):
    """:func:`~wagtail_clientdb.models.customer.name_of` a listing row (:func:`listing.listing_queryset`),
    read from its effective values (``eff_…``): the customer as the listing's branch knows them."""
    return name_of(SimpleNamespace(pk=row.pk, **{field: getattr(row, f"eff_{field}", getattr(row, field)) for field in NAME_FIELDS}))


def display_phone(customer):
    e164 = getattr(customer, "eff_phone", customer.phone)
    raw = getattr(customer, "eff_phone_raw", customer.phone_raw)
    if raw and not e164:
        return _("%(phone)s (not a valid number)") % {"phone": raw}
    return format_phone(e164, raw)


def display_scope(customer):
    if customer.home_branch_id:
        return _("Local: %(branch)s") % {"branch": customer.home_branch}
    if customer.shared_with_all_branches:
        return _("All branches")
    names = [branch.name for branch in customer.branches.all()]
    return ", ".join(names) if names else _("Head office only")


#: Fields of the listing's filter form that choose what is shown, not which customers.
DISPLAY_CHOICES = {"show_attributes"}


class CustomerNameColumn(TitleCellMixin, TitleColumn):
    """The customer's name, linked, with badges: global, archived, pending deletion."""

    def title_extra_html(self, instance):
        badges = []
        if instance.home_branch_id is None:
            badges.append(markup.status_html(gettext("global"), "w-status--primary clientdb-badge"))
        if instance.archived_at:
            badges.append(markup.status_html(gettext("archived"), "clientdb-badge"))
        if instance.is_pending_deletion:
            badges.append(markup.status_html(gettext("pending deletion"), "clientdb-badge"))
        return format_html_join(" ", "{}", ((badge,) for badge in badges))


class MostBookingsColumn(TextCellMixin, NumberColumn):
    """The booking count, whose header sorts by most bookings first."""

    header_template_name = "wagtail_clientdb/tables/most_bookings_header.html"


class BranchContextMixin(ViewerMixin):
    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["clientdb_viewer"] = self.viewer
        context["clientdb_branch_choices"] = scope.branch_choices_for_request(self.request)
        return context


class GroupNamesView(ViewerMixin, View):
    """The dynamic groups a page of the customer listing left to the browser
    (``static/wagtail_clientdb/js/group_names.js``): ``{"names": {id: [group names]}}`` of the
    customers asked for (``id``) that the user sees, in the dynamic groups asked for (``group``),
    as the user sees them."""

    #: The customers the request may reach (the viewset's scope).
    get_scoped_queryset = None
    #: The most customers one request names (a listing page shows twenty).
    MOST_CUSTOMERS = 100

    def get(self, request):
        try:
            ids = [int(value) for value in request.GET.getlist("id")]
            group_ids = [int(value) for value in request.GET.getlist("group")]
        except ValueError:
            return JsonResponse({"error": gettext("Customers and groups are asked for by their numbers.")}, status=400)
        if len(ids) > self.MOST_CUSTOMERS:
            return JsonResponse(
                {"error": gettext("At most %(count)s customers at a time.") % {"count": self.MOST_CUSTOMERS}}, status=400
            )
        pks = list(self.get_scoped_queryset(request).filter(pk__in=ids).values_list("pk", flat=True))
        dynamic = list(groups.dynamic_groups().filter(pk__in=group_ids))
        names = groups.names_by_customer(self.viewer, pks, manual={}, dynamic=dynamic)
        return JsonResponse({"names": {str(pk): names.get(pk, []) for pk in pks}})


class CustomerIndexView(RowURLsMixin, BranchContextMixin, snippet_views.IndexView):
    filterset_class = CustomerFilterSet
    default_ordering = "name"
    search_fields = ["first_name", "last_name", "email", "phone"]

    @cached_property
    def display_branch(self):
        return listing.display_branch(self.viewer, self.filters)

    @cached_property
    def may_edit_global(self):
        return scope.branches_may_edit_global_customers(self.request)

    @cached_property
    def listing_rows(self):
        """The viewer's customers with what a row shows: filtered and searched for the page's
        keys, read by id for its rows (built once; a queryset is copied, not changed, by both)."""
        return listing.listing_queryset(self.viewer, self.display_branch)

    def get_list_buttons(self, instance):
        # Wagtail labels a row's "More" menu with the company record's name (``str``); a
        # screen reader should hear the name the row shows.
        buttons = super().get_list_buttons(instance)
        for button in buttons:
            if isinstance(button, ButtonWithDropdown):
                button.attrs["aria-label"] = gettext("More options for '%(title)s'") % {"title": listed_name(instance)}
        return buttons

    def get_base_queryset(self):
        return self.listing_rows

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "clientdb_location": self.display_branch}

    show_export_buttons = True

    def get(self, request, *args, **kwargs):
        if self.is_export:
            export_format = request.GET["export"]
            queryset = self.get_queryset()
            if listing.has_more_than(queryset, conf.get("EXPORT_BACKGROUND_ROWS")):
                job = exports.start_export_job(request, self.viewer, export_format)
                return redirect(reverse(Customer.snippet_viewset.get_url_name("export_job"), args=(job.pk,)))
            exports.record_export(request.user, self.viewer, request.GET, export_format, listing.count_exactly(queryset))
            # Creation times (and the file's date) on the clock of this listing.
            zone = times.zone_of(self.display_branch)
            filename = f"customers-{times.today(zone):%Y-%m-%d}"
            with timezone.override(zone):
                if export_format == "csv":
                    delimiter = export.delimiter_named(request.GET.get("delimiter"))
                    return export.csv_response(queryset, filename, delimiter, viewer=self.viewer)
                return export.xlsx_response(queryset, filename, viewer=self.viewer)
        return super().get(request, *args, **kwargs)

    @cached_property
    def is_filtering(self):
        # "Show attribute columns" chooses what is shown, not which customers.
        changed = set(self.filters.form.changed_data) if self.filters and self.filters.is_valid() else set()
        return bool(changed - DISPLAY_CHOICES)

    @cached_property
    def active_filters(self):
        shown_only = {self.filters.form[name].auto_id for name in DISPLAY_CHOICES if name in self.filters.form.fields}
        return [active for active in super().active_filters if active.auto_id not in shown_only]

    def filter_queryset(self, queryset):
        return listing.filtered(self.filters, queryset)

    def search_queryset(self, queryset):
        # The listing before the search: the paginator reads the matches listed first from it.
        self.unsearched = queryset
        if not self.is_searching:
            return queryset
        region = ClientDBSettings.load(request_or_site=self.request).default_phone_region
        return listing.searched(queryset, self.search_query, region)

    def order_queryset(self, queryset):
        return listing.order(queryset, self.ordering, self.search_query if self.is_searching else "")

    def get_paginator(self, queryset, per_page, **kwargs):
        return listing.ListingPaginator(
            queryset,
            per_page,
            rows=self.listing_rows,
            branch=self.display_branch, ordering=self.ordering,
            query=self.search_query if self.is_searching else "",
            unsearched=self.unsearched,
            estimable=listing.planner_can_estimate(self.request.GET),
            **kwargs,
        )

    @cached_property
    def columns(self):
        title_class = self._get_title_column_class(CustomerNameColumn)
        return [
            CheckboxColumn("bulk_actions", obj_type="snippet"),
            title_class(
                "name",
                label=_("Name"),
                accessor=listed_name,
                classname="clientdb-name",
                sort_key="name",
                get_url=lambda c: self.get_edit_url(c) or self.get_inspect_url(c),
                get_title_id=lambda c: f"snippet_{quote(c.pk)}_title",
            ),
            TextColumn("email", label=_("Email"), accessor="eff_email", sort_key="email"),
            TextColumn("phone", label=_("Phone"), accessor=display_phone, classname="clientdb-nowrap"),
            TextColumn("groups", label=_("Groups"), accessor=self.group_names_html),
            TextColumn("tags", label=_("Tags"), accessor=lambda c: ", ".join(listing.tag_names(c))),
            MostBookingsColumn(
                "bookings_count",
                label=_("Bookings here") if self.display_branch else _("Bookings"),
                sort_key="bookings_count",
                ascending_title_text=_("Sort by fewest bookings"),
                descending_title_text=_("Sort by most bookings"),
            ),
            TextColumn("scope", label=_("Branches"), accessor=display_scope),
            MomentColumn("created_at", label=pgettext_lazy("when", "Created"), sort_key="created_at", zone=lambda c: self.display_branch),
            *self.attribute_columns,
        ]

    def get_table(self, object_list):
        # The groups of the page's customers, dynamic ones included, in a query per dynamic group
        # (none for the group the listing is filtered by); the rules of the groups the page has no
        # time for are left to the browser (GroupNamesView).
        members_of = self.filters.groups_of_everyone_listed if self.filters else []
        deadline = time.perf_counter() + conf.get("LISTING_GROUP_NAMES_MS") / 1000
        customers, left = groups.attach_names(self.viewer, object_list, members_of=members_of, deadline=deadline)
        self.group_names_url = None
        if left:
            self.group_names_url = reverse(Customer.snippet_viewset.get_url_name("group_names")) + "?" + urlencode(
                [("id", customer.pk) for customer in customers] + [("group", group.pk) for group in left]
            )
        return super().get_table(customers)

    def group_names_html(self, customer):
        names = ", ".join(customer.group_names)
        if not self.group_names_url:
            return names
        separator = ", " if names else ""
        return format_html(
            '{}<span data-clientdb-group-names="{}" data-clientdb-for="{}" data-clientdb-separator="{}" aria-busy="true">{}…</span>',
            names, self.group_names_url, customer.pk, separator, separator,
        )

    @property
    def attribute_columns(self):
        if not (self.filters and self.filters.is_valid()):
            return []
        shown = self.filters.form.cleaned_data.get("show_attributes") or []
        return [
            TextColumn(
                f"attribute_{definition.key}",
                label=definition.label,
                accessor=lambda c, d=definition: attribute_types.display(d, (c.eff_attributes or {}).get(d.key)),
            )
            for definition in self.filters.attribute_definitions
            if definition.key in shown
        ]

    def get_edit_url(self, instance):
        # Asked twice per row (the name's link, the row's buttons).
        if instance.pk not in self.edit_urls:
            self.edit_urls[instance.pk] = self._edit_url(instance)
        return self.edit_urls[instance.pk]

    @cached_property
    def edit_urls(self):
        return {}

    def _edit_url(self, instance):
        if not self.user_has_permission("change"):
            return None
        mode = scope.edit_mode(self.viewer, instance, may_edit_global=self.may_edit_global)
        if mode != scope.EditMode.READ_ONLY:
            return self.row_url(self.edit_url_name, instance)
        return None

    def get_inspect_url(self, instance):
        if self.inspect_url_name and self.user_has_any_permission({"add", "change", "delete", "view"}):
            return self.row_url(self.inspect_url_name, instance)

    def get_delete_url(self, instance):
        if self.user_has_permission("delete") and scope.can_delete(self.viewer, instance):
            return self.row_url(self.delete_url_name, instance)

    def get_add_url(self):
        if self.viewer.sees_nothing:
            return None
        return super().get_add_url()

    def export_buttons(self):
        """The downloads: XLSX, and CSV with each separator, the language's first: German and
        French Excel read semicolons, English Excel commas."""
        buttons = [Button(_("Download XLSX"), url=self.xlsx_export_url, icon_name="download", priority=10)]
        first = export.default_delimiter()
        for priority, (name, delimiter) in enumerate(
            sorted(export.CSV_DELIMITERS.items(), key=lambda item: item[1] != first), start=20
        ):
            label = _("Download CSV (separated by semicolons)") if delimiter == ";" else _("Download CSV (separated by commas)")
            buttons.append(Button(label, url=f"{self.csv_export_url}&delimiter={name}", icon_name="download", priority=priority))
        return buttons

    @cached_property
    def header_more_buttons(self):
        # The downloads get their own labelled "Export" button instead of hiding behind "…".
        export_urls = {self.xlsx_export_url, self.csv_export_url}
        return [button for button in super().header_more_buttons if button.url not in export_urls]

    @cached_property
    def header_buttons(self):
        # Fixed priorities: Wagtail sorts equal priorities by label, which would reorder the
        # buttons with the language.
        buttons = []
        if self.add_url:
            buttons.append(HeaderButton(self.add_item_label, url=self.add_url, icon_name="plus", priority=10))
            buttons.append(
                HeaderButton(
                    _("Import"), url=reverse(Customer.snippet_viewset.get_url_name("import")), icon_name="upload", priority=20
                )
            )
        if self.show_export_buttons:
            buttons.append(
                ButtonWithDropdown(
                    label=_("Export"), icon_name="download", buttons=self.export_buttons(),
                    classname="w-header-button button button-secondary", priority=30,
                )
            )
        buttons.append(
            HeaderButton(
                _("Save as segment"), url=self.save_as_segment_url, icon_name="filter", priority=40,
            )
        )
        return buttons

    @property
    def save_as_segment_url(self):
        """The segment form, given the listing's query string (it keeps the filters, search and order)."""
        url = reverse(Segment.snippet_viewset.get_url_name("add"))
        return f"{url}?{urlencode({'query': self.request.GET.urlencode()})}"


class CustomerCreateView(BranchContextMixin, ViewerFormMixin, snippet_views.CreateView):
    def dispatch(self, request, *args, **kwargs):
        if self.viewer.sees_nothing:
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)

    def save_instance(self):
        customer = super().save_instance()
        audit.customer_created([customer.pk], source=customer.source)
        return customer

    def is_valid(self, form):
        valid = super().is_valid(form)
        if not valid and form.possible_duplicates and set(form.errors) == {NON_FIELD_ERRORS}:
            # The form says it all (who, and what to do); no error banner above it.
            self.produced_error_message = None
        return valid

    def form_valid(self, form):
        try:
            return super().form_valid(form)
        except FoundMeanwhile:
            # Created by a booking or an import since the form was checked: named as above.
            self.produced_error_message = None
            return self.form_invalid(form)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        form = context.get("form")
        found = getattr(form, "possible_duplicates", [])
        context["possible_duplicates"] = [
            {
                "name": duplicates_view.describe_effective(overrides.effective_customer(match.customer, self.viewer.branch)),
                "why": "; ".join(str(DuplicateRule(rule).label) for rule in match.rules),
                "url": reverse(Customer.snippet_viewset.get_url_name("inspect"), args=(match.customer.pk,)),
            }
            for match in found
        ]
        context["create_anyway_name"] = CustomerForm.CREATE_ANYWAY
        context["create_anyway_value"] = ",".join(str(match.customer.pk) for match in found)
        return context


class NamedAsTheBranchKnowsMixin(ViewerMixin):
    """The page's title, header and breadcrumbs, and the edit's message, name the customer as the
    viewer's branch knows them (Wagtail's name the company record)."""

    @cached_property
    def name_as_the_branch_knows(self):
        return overrides.name_known_in(self.object, self.viewer.branch)

    def get_page_subtitle(self):
        return self.name_as_the_branch_knows

    def get_success_message(self):
        return capfirst(self.success_message % {"object": self.get_page_subtitle(), "model_name": self.model._meta.verbose_name})


class CustomerEditView(NamedAsTheBranchKnowsMixin, SaveRefusalMixin, BranchContextMixin, ViewerFormMixin, snippet_views.EditView):

    @cached_property
    def edit_mode(self):
        return scope.edit_mode(self.viewer, self.object)

    def dispatch(self, request, *args, **kwargs):
        if self.edit_mode == scope.EditMode.READ_ONLY:
            messages.error(
                request,
                _("“%(customer)s” is shared by the head office and is read-only in your branch.")
                % {"customer": self.get_page_subtitle()},
            )
            return redirect(self.get_inspect_url())
        return super().dispatch(request, *args, **kwargs)

    @cached_property
    def can_delete(self):
        return self.user_has_permission("delete") and scope.can_delete(self.viewer, self.object)

    def save_instance(self):
        # Logged with the fields the save changed, on the record or as the branch's local values.
        local_branch = self.viewer.branch if self.edit_mode == scope.EditMode.OVERRIDE else None
        with audit.edit_of(self.object.pk, user=self.request.user, local_branch=local_branch):
            self.action_class(self.form.instance, user=self.request.user, form=self.form, log_action=None).execute(
                skip_permission_checks=True
            )
        return self.form.instance

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["edit_mode"] = self.edit_mode
        if self.viewer.is_manager:
            context["local_values"] = local_values_summary(self.object)
        return context


class CustomerDeleteView(ViewerMixin, snippet_views.DeleteView):
    """Deleting a customer goes through the "Customers to delete" queue."""

    def dispatch(self, request, *args, **kwargs):
        if not scope.can_delete(self.viewer, self.object):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)

    def get_usage_url(self):
        # Wagtail's reference index leaves customers out (its usage pages know no branch
        # rules), so its "referenced 0 times" would be wrong: the message counts the
        # appointments instead.
        return None

    @property
    def confirmation_message(self):
        appointments = self.object.appointments.all()
        upcoming = appointments.upcoming().count()
        return " ".join(
            [
                _(
                    "Delete “%(customer)s”? The customer disappears at once from every branch without an "
                    "upcoming appointment. Branches with an upcoming appointment keep the customer until the "
                    "last one is cancelled or has taken place; then the customer is deleted. Past appointments "
                    "are kept without personal data."
                )
                % {"customer": self.object},
                _("Appointments of this customer: %(upcoming)s upcoming, %(other)s past or cancelled.")
                % {"upcoming": upcoming, "other": appointments.count() - upcoming},
            ]
        )

    def form_valid(self, form):
        request = deletion.request_deletion(self.viewer, self.object)
        if request.status == DeletionStatus.DONE:
            messages.success(self.request, _("“%(customer)s” was deleted.") % {"customer": self.object})
        else:
            messages.warning(
                self.request,
                _("“%(customer)s” is queued for deletion. Blocked by: %(errors)s")
                % {"customer": self.object, "errors": deletion.describe_errors(request)},
            )
        return redirect(self.get_success_url())


def local_values_summary(customer):
    """Which branches keep local values of a customer, and for which fields (for managers)."""
    labels = {name: Customer._meta.get_field(name).verbose_name for name in overrides.OVERRIDABLE_FIELDS}
    summary = []
    for override in customer.overrides.select_related("branch").order_by("branch__name"):
        names = overrides.EffectiveCustomer(customer, override).local_fields
        summary.append(
            {
                "branch": override.branch,
                "fields": [str(labels.get(name, name.removeprefix(overrides.ATTRIBUTE_PREFIX))) for name in names],
            }
        )
    return summary


#: The fields of an appointment a customer's history shows (the branch's clock for its start).
HISTORY_SHOWS = [
    *("start", "status", "branch", "service", "staff"),
    *("branch__name", "branch__timezone", "service__name"),
    *(f"staff__{name}" for name in STAFF_NAME_FIELDS),
]


class CustomerObjectHistoryView(NamedAsTheBranchKnowsMixin, LocalTimesHistoryView):
    """One customer's history (the history report of every customer is
    :class:`~wagtail_clientdb.views.history.CustomerHistoryView`)."""


class CustomerUsageView(NamedAsTheBranchKnowsMixin, snippet_views.UsageView):
    def get_breadcrumbs_items(self):
        # Wagtail's names the customer in the usage page's breadcrumbs without get_page_subtitle.
        edit_url = self.get_edit_url(self.object)
        return [
            {**item, "label": self.get_page_subtitle()} if edit_url and item["url"] == edit_url else item
            for item in super().get_breadcrumbs_items()
        ]


class CustomerInspectView(NamedAsTheBranchKnowsMixin, BranchContextMixin, snippet_views.InspectView):

    @cached_property
    def header_more_buttons(self):
        buttons = super().header_more_buttons
        if self.user_has_permission("change") and archive.may_archive(self.viewer, self.object):
            name = "restore" if self.object.is_archived else "archive"
            buttons.append(
                Button(
                    _("Restore") if self.object.is_archived else _("Archive"),
                    url=reverse(Customer.snippet_viewset.get_url_name(name), args=(self.object.pk,)),
                    icon_name="rotate" if self.object.is_archived else "folder-inverse",
                    priority=25,
                )
            )
        if self.viewer.is_manager:
            buttons.append(
                Button(
                    _("Personal data"),
                    url=reverse(Customer.snippet_viewset.get_url_name("personal_data"), args=(self.object.pk,)),
                    icon_name="download",
                    priority=30,
                )
            )
        return buttons

    @cached_property
    def effective(self):
        return overrides.effective_customer(self.object, self.viewer.branch)

    def get_fields_context(self):
        customer = self.object
        effective = self.effective
        local = set(effective.local_fields)
        rows = [
            ("first_name", effective.first_name),
            ("last_name", effective.last_name),
            ("email", effective.email),
            ("phone_raw", display_phone(effective)),
            ("birthday", times.day(effective.birthday)),
            ("notes", effective.notes),
        ]
        fields = [
            {
                "label": capfirst(Customer._meta.get_field(name).verbose_name),
                "value": value,
                "is_local": name in local,
            }
            for name, value in rows
        ]
        fields += [
            {"label": _("Marketing consent"), "value": _("yes") if customer.marketing_consent else _("no")},
            {"label": _("Groups"), "value": ", ".join(groups.names_of(self.viewer, customer))},
            {"label": _("Tags"), "value": ", ".join(sorted(t.name for t in customer.tags.all()))},
            {"label": _("Branches"), "value": display_scope(customer)},
            {"label": _("Source"), "value": customer.get_source_display()},
            {"label": _("External ID"), "value": customer.external_id},
            {"label": pgettext_lazy("when", "Created"), "value": times.moment(customer.created_at, self.viewer)},
            {"label": _("Updated"), "value": times.moment(effective.updated_at, self.viewer)},
        ]
        stored = effective.attributes
        for definition in attributes.active_definitions(AttributeTarget.CUSTOMER):
            fields.append(
                {
                    "label": definition.label,
                    "value": attribute_types.display(definition, stored.get(definition.key)),
                    "is_local": overrides.ATTRIBUTE_PREFIX + definition.key in local,
                }
            )
        return fields

    def get_edit_url(self):
        if self.user_has_permission("change") and scope.edit_mode(self.viewer, self.object) != scope.EditMode.READ_ONLY:
            return super().get_edit_url()

    def get_delete_url(self):
        if scope.can_delete(self.viewer, self.object):
            return super().get_delete_url()

    def appointment_link(self):
        """``pk`` → the URL of an appointment of the history (its edit page, else its own), or
        ``None`` for a user who may not open appointments; reversed once, not per appointment."""
        policy = Appointment.snippet_viewset.permission_policy
        user = self.request.user
        for view, actions in (("edit", {"change"}), ("inspect", {"add", "change", "delete", "view"})):
            if policy.user_has_any_permission(user, actions):
                mark = str(RowURLsMixin.KEY_MARK)
                before, after = reverse(Appointment.snippet_viewset.get_url_name(view), args=(mark,)).split(mark)
                return lambda pk: f"{before}{pk}{after}"
        return None

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        appointments = with_status_tags(
            scope.visible_appointments(self.viewer)
            .filter(customer=self.object)
            .select_related("branch", "staff", "service")
            # What the history shows of each appointment, not the rest of hundreds of them.
            .only(*HISTORY_SHOWS)
            .order_by("-start")
        )
        link = self.appointment_link()
        for appointment in appointments:
            appointment.link = link(appointment.pk) if link else ""
        context.update(
            clientdb_zone=times.zone_of(self.viewer),
            effective=self.effective,
            edit_mode=scope.edit_mode(self.viewer, self.object),
            appointments=appointments,
            no_shows=sum(a.status == AppointmentStatus.NO_SHOW for a in appointments),
            cancellations=sum(a.status == AppointmentStatus.CANCELLED for a in appointments),
            consent_events=self.object.consent_events.select_related("recorded_by"),
            local_values=local_values_summary(self.object) if self.viewer.is_manager else [],
            booking_block=booking_blocks.block_of(self.object),
            archived_at=times.moment(self.object.archived_at, self.viewer) if self.object.is_archived else None,
            merges=merges_panel(self.viewer, self.request.user, self.object),
            booking_block_url=(
                reverse(Customer.snippet_viewset.get_url_name("booking_block"), args=(self.object.pk,))
                if self.user_has_permission("change") else None
            ),
        )
        return context


class CustomerSearchFilterForm(BaseFilterForm):
    q = forms.CharField(
        label=_("Search term"),
        widget=forms.TextInput(attrs={"placeholder": _("Name, email or phone")}),
        required=False,
    )

    def filter(self, objects):
        objects = super().filter(objects)
        query = self.cleaned_data.get("q")
        if query:
            region = ClientDBSettings.load().default_phone_region
            objects = objects.filter(customer_search_q(query, region))
            self.is_searching = True
            self.search_query = query
        return objects


class CustomerChooseMixin(ViewerMixin):
    """Customers as the viewer's branch sees them, searchable by name, email and phone, in the
    customer listing's order and paged as it pages (:class:`~wagtail_clientdb.listing.ListingPaginator`):
    sorting every customer a branch sees for each page of the chooser took 1.4 s at a million."""

    filter_form_class = CustomerSearchFilterForm
    results_template_name = "wagtail_clientdb/customers/chooser_results.html"

    def get_object_list(self):
        return overrides.with_effective_values(super().get_object_list(), self.viewer.branch)

    def get_results_page(self, request):
        customers = self.get_object_list()
        found = self.filter_object_list(customers)
        query = self.filter_form.search_query if self.filter_form.is_searching else ""
        self.paginator = listing.ListingPaginator(
            found, self.per_page, rows=customers, branch=self.viewer.branch, ordering=listing.DEFAULT_ORDERING,
            query=query, unsearched=customers, estimable=not query,
        )
        try:
            return self.paginator.page(request.GET.get("p", 1))
        except InvalidPage as error:
            raise Http404 from error

    @property
    def title_column(self):
        # Named as the viewer's branch knows them, as they are sorted (Wagtail's says "Title" and
        # names the company record).
        column = super().title_column
        column.label, column.accessor = _("Name"), listed_name
        return column

    @property
    def columns(self):
        # Archived customers are found too (booking one brings it back), and marked.
        return [
            *super().columns,
            Column("archived", label=_("Archived"), accessor=lambda c: _("archived") if c.is_archived else ""),
        ]


class CustomerChooseView(CustomerChooseMixin, ScopedChooseView):
    pass


class CustomerChooseResultsView(CustomerChooseMixin, ScopedChooseResultsView):
    pass


class CustomerChosenView(ScopedChosenView):
    def get_display_title(self, instance):
        # Named in the form as the chooser's list named them (Wagtail's names the company record).
        return overrides.name_known_in(instance, scope.viewer_for_request(self.request).branch)


class CustomerChooserWidget(ScopedSnippetChooser):
    #: The branch whose name of the chosen customer the widget shows, set by a form for its
    #: viewer (:class:`~wagtail_clientdb.forms.appointments.AppointmentForm`); ``None``: the company record's.
    branch = None

    def get_display_title(self, instance):
        return overrides.name_known_in(instance, self.branch)


class CustomerChooserViewSet(ScopedChooserViewSet):
    base_widget_class = CustomerChooserWidget
    choose_view_class = CustomerChooseView
    choose_results_view_class = CustomerChooseResultsView
    chosen_view_class = CustomerChosenView


class CustomerViewSet(ScopedViewSetMixin, snippet_views.SnippetViewSet):
    model = Customer
    icon = "user"
    menu_label = _("Customers")
    menu_order = 100
    copy_view_enabled = False
    inspect_view_enabled = True
    index_view_class = CustomerIndexView
    add_view_class = CustomerCreateView
    edit_view_class = CustomerEditView
    delete_view_class = CustomerDeleteView
    inspect_view_class = CustomerInspectView
    history_view_class = CustomerObjectHistoryView
    usage_view_class = CustomerUsageView
    chooser_viewset_class = CustomerChooserViewSet
    index_template_name = "wagtail_clientdb/customers/index.html"
    index_results_template_name = "wagtail_clientdb/customers/index_results.html"
    create_template_name = "wagtail_clientdb/customers/create.html"
    edit_template_name = "wagtail_clientdb/customers/edit.html"
    inspect_template_name = "wagtail_clientdb/customers/inspect.html"

    edit_handler = ClientDBTabbedInterface(
        [
            ObjectList(
                [
                    FieldRowPanel([FieldPanel("first_name"), FieldPanel("last_name")]),
                    FieldPanel("email"),
                    FieldPanel("phone_raw", icon="mobile-alt"),
                    FieldPanel("birthday"),
                    FieldPanel("notes"),
                    FieldPanel("reset_to_global"),
                ],
                heading=_("Contact"),
            ),
            ObjectList(
                [
                    FieldPanel("marketing_consent"),
                    FieldPanel("groups", widget=forms.CheckboxSelectMultiple),
                    FieldPanel("tags"),
                    FieldPanel("external_id"),
                ],
                heading=_("Details"),
            ),
            ObjectList([AttributeFieldsPanel()], heading=_("Attributes")),
            ObjectList(
                [FieldPanel("sharing"), FieldPanel("share_branches")],
                heading=_("Branches"),
                permission=scope.MANAGE_GLOBAL_PERMISSION,
            ),
        ],
        base_form_class=CustomerForm,
    )

    def visible(self, viewer):
        return scope.visible_customers(viewer)

    def get_urlpatterns(self):
        return super().get_urlpatterns() + [
            path(
                "group-names/",
                page_view(GroupNamesView.as_view(get_scoped_queryset=self.get_scoped_queryset)),
                name="group_names",
            ),
            path("import/", imports.UploadView.as_view(), name="import"),
            path("import/<int:job_id>/", imports.JobView.as_view(), name="import_job"),
            path("import/<int:job_id>/mapping/", imports.MappingView.as_view(), name="import_mapping"),
            path("import/<int:job_id>/status/", imports.StatusView.as_view(), name="import_status"),
            path("import/<int:job_id>/report/", imports.ReportView.as_view(), name="import_report"),
            path("import/batches/", imports.BatchListView.as_view(), name="import_batches"),
            path("import/batches/<int:batch_id>/", imports.RollbackView.as_view(), name="import_rollback"),
            path("export/<int:job_id>/", imports.ExportJobView.as_view(), name="export_job"),
            path("bulk-action/<int:job_id>/", BulkActionJobView.as_view(), name="bulk_action_job"),
            path("export/<int:job_id>/download/", imports.ExportJobView.as_view(), {"download": True}, name="export_download"),
            path("online-booking/<int:pk>/", BookingBlockView.as_view(), name="booking_block"),
            path("personal-data/<int:pk>/", PersonalDataView.as_view(), name="personal_data"),
            path("archive/<int:pk>/", ArchiveView.as_view(), name="archive"),
            path("restore/<int:pk>/", ArchiveView.as_view(), {"restoring": True}, name="restore"),
            path("merge/", MergeView.as_view(), name="merge"),
            path("merges/<int:merge_id>/undo/", MergeUndoView.as_view(), name="merge_undo"),
        ]
