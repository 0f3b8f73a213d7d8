"""Merging customers in the admin: the side-by-side view, its confirmation, and "Undo merge".

The rules are in :mod:`wagtail_clientdb.merging`; these views only ask and show. The merge
view is ``reverse("wagtailsnippets_wagtail_clientdb_customer:merge") + "?id=1&id=2"`` (the
"Merge" bulk action of the customer listing leads there, and so can any other view); it
answers 404 when an id names a customer the user does not see.
"""

import json

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.generic import TemplateView, View
from wagtail.admin import messages
from wagtail.admin.views.generic import WagtailAdminTemplateMixin
from wagtail.permissions import policy_registry

from .. import attribute_types, conf, merging, overrides, scope, times
from ..contact import format_phone
from ..models import AttributeDefinition, AttributeTarget, ConsentEvent, Customer, CustomerMerge, OnlineBookingBlock
from .common import ViewerMixin

#: Merging changes one record and removes the others: both permissions are needed.
MERGE_PERMISSIONS = ("change", "delete")


def may_merge_at_all(user):
    policy = policy_registry.get_by_type(Customer)
    return all(policy.user_has_permission(user, action) for action in MERGE_PERMISSIONS)


def merge_url(customers):
    """The merge view for these customers (or their ids)."""
    ids = [getattr(customer, "pk", customer) for customer in customers]
    return reverse(Customer.snippet_viewset.get_url_name("merge")) + "?" + urlencode([("id", pk) for pk in ids])


def listing_url():
    return reverse(Customer.snippet_viewset.get_url_name("list"))


def inspect_url(customer):
    return reverse(Customer.snippet_viewset.get_url_name("inspect"), args=(customer.pk,))


def field_label(name):
    return capfirst(Customer._meta.get_field(name).verbose_name)


def shown_value(customer, name):
    if name == "phone_raw":
        return format_phone(customer.phone, customer.phone_raw)
    if name == "birthday":
        return times.day(customer.birthday)
    return getattr(customer, name) or ""


class MergeForm(forms.Form):
    """Whose values survive: one radio group per field whose values differ (the value is the
    id of the customer whose value is kept), and the record that continues."""

    survivor = forms.TypedChoiceField(label=gettext_lazy("Keep the record of"), coerce=int, widget=forms.RadioSelect)
    #: ``{pk: version}`` of the customers the page showed.
    versions = forms.CharField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, customers, fields, attribute_keys, **kwargs):
        super().__init__(*args, **kwargs)
        pk_choices = [(customer.pk, str(customer.pk)) for customer in customers]
        self.fields["survivor"].choices = pk_choices
        self.chosen_fields = fields
        self.attribute_keys = attribute_keys
        for name in fields:
            self.fields[f"field_{name}"] = forms.TypedChoiceField(
                label=field_label(name), coerce=int, choices=pk_choices, widget=forms.RadioSelect, required=False,
                empty_value=None,
            )
        for index, key in enumerate(attribute_keys):
            self.fields[f"attribute_{index}"] = forms.TypedChoiceField(
                label=key, coerce=int, choices=pk_choices, widget=forms.RadioSelect, required=False, empty_value=None
            )

    def choices(self):
        data = self.cleaned_data
        return merging.Choices(
            survivor=data["survivor"],
            fields={name: data[f"field_{name}"] for name in self.chosen_fields},
            attributes={key: data[f"attribute_{index}"] for index, key in enumerate(self.attribute_keys)},
        )

    def expected_versions(self):
        try:
            shown = json.loads(self.cleaned_data.get("versions") or "{}")
            return {int(pk): version for pk, version in shown.items()}
        except (ValueError, TypeError, AttributeError):
            return {}


class MergeView(ViewerMixin, WagtailAdminTemplateMixin, TemplateView):
    template_name = "wagtail_clientdb/customers/merge.html"
    page_title = gettext_lazy("Merge customers")
    header_icon = "user"

    def dispatch(self, request, *args, **kwargs):
        if not may_merge_at_all(request.user):
            raise PermissionDenied
        self.customers = merging.mergeable_customers(self.viewer, request.GET.getlist("id"))
        if self.customers is None:
            raise Http404
        try:
            merging.check_mergeable(self.viewer, self.customers)
        except merging.MergeRefused as refusal:
            messages.error(request, " ".join(refusal.messages))
            return redirect(self.back_url)
        return super().dispatch(request, *args, **kwargs)

    @cached_property
    def back_url(self):
        next_url = self.request.GET.get("next", "")
        if next_url and url_has_allowed_host_and_scheme(next_url, allowed_hosts={self.request.get_host()}):
            return next_url
        return listing_url()

    def get_breadcrumbs_items(self):
        return [
            {"url": reverse("wagtailadmin_home"), "label": _("Home")},
            {"url": listing_url(), "label": _("Customers")},
            {"url": "", "label": self.get_page_title()},
        ]

    @cached_property
    def differing_fields(self):
        return [
            name
            for name in merging.CHOSEN_FIELDS
            if len({(getattr(c, name), c.phone if name == "phone_raw" else None) for c in self.customers}) > 1
        ]

    @cached_property
    def attribute_keys(self):
        keys = merging.attribute_keys(self.customers)
        return [key for key in keys if len({json.dumps((c.attributes or {}).get(key)) for c in self.customers}) > 1]

    def make_form(self, data=None):
        defaults = merging.complete_choices(self.customers)
        initial = {
            "survivor": defaults.survivor,
            "versions": json.dumps({str(c.pk): c.version for c in self.customers}),
            **{f"field_{name}": defaults.fields[name] for name in self.differing_fields},
            **{f"attribute_{i}": defaults.attributes[key] for i, key in enumerate(self.attribute_keys)},
        }
        return MergeForm(
            data,
            initial=initial,
            customers=self.customers,
            fields=self.differing_fields,
            attribute_keys=self.attribute_keys,
        )

    def get(self, request, *args, **kwargs):
        return self.render_to_response(self.get_context_data(form=self.make_form()))

    def post(self, request, *args, **kwargs):
        changed = self.changed_since_shown(request.POST.get("versions"))
        if changed:
            messages.error(
                request,
                _("Changed since you opened this page: %(names)s. Check the values again.")
                % {"names": ", ".join(f"“{c}”" for c in changed)},
            )
            return self.render_to_response(self.get_context_data(form=self.make_form()))
        form = self.make_form(request.POST)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form))
        if "confirm" not in request.POST:
            plan = merging.make_plan(self.customers, form.choices())
            return self.render_to_response(self.get_context_data(form=form, plan=plan))
        try:
            record = merging.merge(
                self.viewer,
                [c.pk for c in self.customers],
                form.choices(),
                expected_versions=form.expected_versions(),
                user=request.user,
            )
        except merging.MergeRefused as refusal:
            messages.error(request, " ".join(refusal.messages))
            self.customers = merging.mergeable_customers(self.viewer, [c.pk for c in self.customers]) or []
            if len(self.customers) < 2:
                return redirect(self.back_url)
            for name in ("differing_fields", "attribute_keys"):
                self.__dict__.pop(name, None)
            return self.render_to_response(self.get_context_data(form=self.make_form()))
        survivor = record.survivor
        messages.success(
            request,
            _("Merged into “%(customer)s”: %(names)s. You can undo this on the customer's page for %(days)s days.")
            % {
                "customer": survivor,
                "names": ", ".join(f"“{name}”" for name in merging.merged_names(record)),
                "days": conf.get("MERGE_UNDO_DAYS"),
            },
        )
        return redirect(inspect_url(survivor))

    def changed_since_shown(self, versions):
        """The customers whose version is not the one the page showed."""
        try:
            shown = {int(pk): version for pk, version in json.loads(versions or "{}").items()}
        except (ValueError, TypeError, AttributeError):
            shown = {}
        return [customer for customer in self.customers if shown.get(customer.pk) != customer.version]

    # --- What the page shows ------------------------------------------------------------------------

    def get_context_data(self, form, plan=None, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(
            form=form,
            customers=self.customers,
            rows=self.side_by_side(form),
            plan=plan,
            summary=self.summary(plan) if plan else None,
            submit_url=self.request.get_full_path(),
            back_url=self.back_url,
            undo_days=conf.get("MERGE_UNDO_DAYS"),
        )
        return context

    def chosen(self, form, name):
        value = form[name].value()
        try:
            return int(value)
        except (TypeError, ValueError):
            return None

    def side_by_side(self, form):
        customers = self.customers
        labels = attribute_labels()
        rows = [
            self.radio_row(form, "survivor", _("Keep the record of"), lambda c: _("ID %(number)s, created %(date)s") % {
                "number": c.pk, "date": times.day(c.created_at, self.viewer)}),
        ]
        for name in merging.CHOSEN_FIELDS:
            if name in self.differing_fields:
                rows.append(
                    self.radio_row(form, f"field_{name}", field_label(name), lambda c, n=name: shown_value(c, n))
                )
            else:
                rows.append(self.plain_row(field_label(name), lambda c, n=name: shown_value(c, n)))
        rows.append(self.plain_row(field_label("notes"), lambda c: c.notes, help=_("Put together.")))
        decisions = consent_decisions(customers)
        rows.append(
            self.plain_row(_("Marketing consent"), lambda c: decisions[c.pk], help=_("The most recent decision wins."))
        )
        rows.append(self.plain_row(_("Groups"), lambda c: ", ".join(g.name for g in c.groups.all()), help=_("United.")))
        rows.append(
            self.plain_row(_("Tags"), lambda c: ", ".join(sorted(c.tags.names(), key=str.casefold)), help=_("United."))
        )
        rows.append(self.plain_row(_("Branches"), display_scope, help=_("United: all branches, if one of them is.")))
        for key in merging.attribute_keys(customers):
            label = labels.get(key, (None, key))[1]
            show = lambda c, k=key: show_attribute(labels, k, (c.attributes or {}).get(k))  # noqa: E731
            if key in self.attribute_keys:
                rows.append(self.radio_row(form, f"attribute_{self.attribute_keys.index(key)}", label, show))
            else:
                rows.append(self.plain_row(label, show))
        rows.append(
            self.plain_row(
                _("Appointments"), lambda c: str(c.appointments.count()), help=_("All move to the record kept.")
            )
        )
        rows.append(
            self.plain_row(
                _("Local values of branches"),
                lambda c: ", ".join(
                    o.branch.name for o in c.overrides.select_related("branch").order_by("branch__name")
                ),
            )
        )
        blocked = set(OnlineBookingBlock.objects.filter(customer__in=customers).values_list("customer_id", flat=True))
        rows.append(self.plain_row(_("Online booking"), lambda c: _("blocked") if c.pk in blocked else ""))
        return rows

    def radio_row(self, form, name, label, show):
        chosen = self.chosen(form, name)
        return {
            "label": label,
            "name": form.add_prefix(name),
            "errors": form.errors.get(name),
            "cells": [
                {"pk": c.pk, "value": show(c), "checked": c.pk == chosen, "id": f"{name}-{c.pk}"}
                for c in self.customers
            ],
        }

    def plain_row(self, label, show, help=""):
        return {"label": label, "name": None, "help": help, "cells": [{"value": show(c)} for c in self.customers]}

    def summary(self, plan):
        """What the merge will do, in words, for the confirmation."""
        values = plan.values
        labels = attribute_labels()
        fields = [
            (field_label(name), shown_value(_Values(values), name)) for name in merging.CHOSEN_FIELDS
        ]
        fields.append((field_label("notes"), values["notes"]))
        fields.append((_("Marketing consent"), _("yes") if values["marketing_consent"] else _("no")))
        fields.append((_("Groups"), ", ".join(g.name for g in plan.groups)))
        fields.append((_("Tags"), ", ".join(plan.tags)))
        if plan.shared_with_all_branches:
            sharing = _("All branches")
        elif plan.home_branch is not None:
            sharing = _("Local: %(branch)s") % {"branch": plan.home_branch}
        else:
            sharing = ", ".join(b.name for b in plan.branches) or _("Head office only")
        fields.append((_("Branches"), sharing))
        for key, value in sorted(values["attributes"].items()):
            fields.append((labels.get(key, (None, key))[1], show_attribute(labels, key, value)))
        local_values = []
        for branch, kept in sorted(plan.local_values.items(), key=lambda item: item[0].name):
            shown = []
            for name in overrides.OVERRIDABLE_FIELDS:
                if name in kept:
                    value = format_phone(kept.get("phone"), kept["phone_raw"]) if name == "phone_raw" else kept[name]
                    value = times.day(value) if name == "birthday" else value
                    shown.append(f"{field_label(name)}: {value}")
            for key, value in sorted(kept.get("attributes", {}).items()):
                shown.append(f"{labels.get(key, (None, key))[1]}: {show_attribute(labels, key, value)}")
            local_values.append({"branch": branch, "values": shown})
        moves = []
        for customer in plan.merged:
            moves.append(
                {
                    "customer": customer,
                    "appointments": len(plan.appointments[customer.pk]),
                    "consent_events": len(plan.consent_events[customer.pk]),
                    "deletion_requests": len(plan.deletion_requests[customer.pk]),
                }
            )
        return {"fields": fields, "local_values": local_values, "moves": moves, "booking_block": plan.booking_block}


class _Values:
    """The planned values, read like a customer's."""

    def __init__(self, values):
        self.__dict__.update(values)


def display_scope(customer):
    from .customers import display_scope as scope_of

    return scope_of(customer)


def attribute_labels():
    return {
        d.key: (d, d.label)
        for d in AttributeDefinition.objects.filter(applies_to=AttributeTarget.CUSTOMER)
    }


def show_attribute(labels, key, value):
    if value is None:
        return ""
    definition = labels.get(key, (None, key))[0]
    return attribute_types.display(definition, value) if definition is not None else str(value)


def consent_decisions(customers):
    """Each customer's consent, with when it was last decided."""
    latest = {}
    for event in ConsentEvent.objects.filter(customer__in=customers).order_by("recorded_at", "pk"):
        latest[event.customer_id] = event
    shown = {}
    for customer in customers:
        event = latest.get(customer.pk)
        answer = _("yes") if customer.marketing_consent else _("no")
        if event is not None:
            answer = _("%(answer)s (decided %(date)s)") % {"answer": answer, "date": times.moment(event.recorded_at)}
        shown[customer.pk] = answer
    return shown


class MergeUndoView(ViewerMixin, View):
    """POST: undo a merge, or say exactly what blocks it."""

    http_method_names = ["post"]

    def post(self, request, merge_id):
        if not may_merge_at_all(request.user):
            raise PermissionDenied
        merge = CustomerMerge.objects.select_related("survivor").filter(pk=merge_id).first()
        if merge is None or not self.may_see(merge):
            raise Http404
        try:
            restored = merging.undo(self.viewer, merge, user=request.user)
        except merging.UndoRefused as refusal:
            messages.error(
                request, _("This merge cannot be undone: %(reasons)s") % {"reasons": " ".join(refusal.messages)}
            )
        else:
            messages.success(
                request,
                _("Merge undone. Restored: %(names)s.") % {"names": ", ".join(f"“{c}”" for c in restored)},
            )
        if merge.survivor is not None:
            return redirect(inspect_url(merge.survivor))
        return redirect(listing_url())

    def may_see(self, merge):
        if merge.survivor is not None and not scope.is_visible(self.viewer, merge.survivor):
            return False
        return merging.may_undo(self.viewer, merge)


def merges_panel(viewer, user, customer):
    """The "Merged customers" section of a customer's page: the merges it survived that the
    viewer may undo, each with its undo button or what blocks it."""
    if not may_merge_at_all(user):
        return []
    panel = []
    for merge in merging.merges_into(customer):
        if not merging.may_undo(viewer, merge):
            continue
        panel.append(
            {
                "merge": merge,
                "names": [
                    _("“%(name)s” (ID %(number)s)") % {"name": name, "number": number}
                    for name, number in zip(merging.merged_names(merge), merge.merged_numbers)
                ],
                "blockers": merging.undo_blockers(merge, viewer),
                "deadline": merging.undo_deadline(merge),
                "undo_url": reverse(Customer.snippet_viewset.get_url_name("merge_undo"), args=(merge.pk,)),
            }
        )
    return panel
