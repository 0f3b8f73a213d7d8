"""Bulk actions on the customer listing, and branch-scoped replacements of Wagtail's bulk delete.

Wagtail's bulk actions load objects by id for any model; ours load them only from what
the viewer may see (:class:`ScopedBulkActionMixin`), so a forged id list reaches nothing
else and reveals nothing of it. Every model of the app has its bulk actions replaced so.
"""

import json
from urllib.parse import urlsplit

from django import forms
from django.core.exceptions import ValidationError
from django.http import Http404, QueryDict
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from wagtail.admin import messages
from wagtail.admin.forms.tags import TagField
from wagtail.snippets.bulk_actions.delete import DeleteBulkAction
from wagtail.snippets.bulk_actions.snippet_bulk_action import SnippetBulkAction

from .. import archive, attributes, audit, booking, conf, deletion, export, exports, listing, merging, scope, times, versions
from ..models import (
    Appointment,
    AppointmentStatus,
    AttributeDefinition,
    Branch,
    Customer,
    CustomerGroup,
    CustomerTag,
    DeletionRequest,
    DeletionStatus,
    DuplicatePair,
    Segment,
    Service,
)
from .common import ProtectedDeletionMixin
from .appointments import STATUS_ACTIONS
from .scoping import scoped_queryset


class ScopedBulkActionMixin:
    def get_scoped_queryset(self):
        return scoped_queryset(self.model, self.request)

    def get_listed_queryset(self):
        """What "select all" chooses: every object the user may reach (customers: of the listing)."""
        return self.get_scoped_queryset()

    def get_actionable_objects(self):
        ids = self.request.GET.getlist("id")
        if "all" in ids:
            queryset = self.get_listed_queryset()
        else:
            try:
                queryset = self.get_scoped_queryset().filter(pk__in=ids)
            except (ValueError, TypeError):
                raise Http404
        objects, no_access = [], []
        for obj in queryset:
            (objects if self.check_perm(obj) else no_access).append(obj)
        if not objects and not no_access:
            raise Http404
        return objects, {"items_with_no_access": no_access}


class ScopedDeleteBulkAction(ProtectedDeletionMixin, ScopedBulkActionMixin, DeleteBulkAction):
    models = [Appointment, Branch, CustomerGroup, DeletionRequest, DuplicatePair, Segment, Service]

    def refused_deletion_url(self):
        return self.next_url

    @property
    def _actionable_objects(self):
        return ScopedBulkActionMixin.get_actionable_objects(self)


class AttributeDeleteBulkAction(ScopedDeleteBulkAction):
    """Deleting attribute definitions deletes their values everywhere, as the delete view does."""

    models = [AttributeDefinition]

    @classmethod
    def execute_action(cls, objects, **kwargs):
        for definition in objects:
            attributes.remove_values(definition)
        return super().execute_action(objects, **kwargs)


class CustomerBulkForm(forms.Form):
    #: ``{pk: version}`` of the customers the confirmation page listed.
    versions = forms.CharField(widget=forms.HiddenInput, required=False)

    def shown_versions(self):
        try:
            shown = json.loads(self.cleaned_data.get("versions") or "{}")
        except ValueError:
            return {}
        return shown if isinstance(shown, dict) else {}


class CustomerBulkAction(ScopedBulkActionMixin, SnippetBulkAction):
    """A bulk action on customers. Customers changed since the confirmation page listed them
    are left as they are, and the user is told which (:mod:`wagtail_clientdb.versions`)."""

    models = [Customer]
    template_name = "wagtail_clientdb/bulk_actions/confirm.html"
    form_class = CustomerBulkForm
    action_title = ""
    action_question = ""

    @property
    def viewer(self):
        return scope.viewer_for_request(self.request)

    def listing_params(self):
        """The filters, search and order of the customer listing the action was started from
        (none when it came from elsewhere)."""
        listing_url = reverse(Customer.snippet_viewset.get_url_name("list"))
        came_from = urlsplit(self.next_url)
        return QueryDict(came_from.query if came_from.path == listing_url else "", mutable=True)

    def get_listed_queryset(self):
        # "Select all" in a filtered listing (or a segment opened in it) means its customers,
        # never every customer the user may see.
        return listing.customers_as_listed(self.viewer, self.listing_params())

    def check_perm(self, customer):
        """Changing tags, groups or sharing changes the one record: direct editors only."""
        return scope.edit_mode(self.viewer, customer) == scope.EditMode.DIRECT

    def get_initial(self):
        objects, _no_access = self.get_actionable_objects()
        return {"versions": json.dumps({str(customer.pk): customer.version for customer in objects})}

    def prepare_action(self, objects, objects_without_access):
        shown = self.cleaned_form.shown_versions()
        stale = [customer for customer in objects if shown.get(str(customer.pk)) != customer.version]
        if stale:
            # ``objects`` is the list Wagtail passes on to execute_action.
            objects[:] = [customer for customer in objects if customer not in stale]
            messages.warning(
                self.request,
                ngettext(
                    "%(count)d customer changed after you opened this page and was left as it is: %(names)s",
                    "%(count)d customers changed after you opened this page and were left as they are: %(names)s",
                    len(stale),
                )
                % {"count": len(stale), "names": ", ".join(str(customer) for customer in stale)},
            )

    def get_context_data(self, **kwargs):
        return {
            **super().get_context_data(**kwargs),
            "action_title": self.action_title,
            "action_question": self.action_question,
            "no_access_message": _("You cannot change these customers:"),
        }


class AddTagsForm(CustomerBulkForm):
    tags = TagField(label=_("Tags"), tag_model=CustomerTag)


class AddTagsBulkAction(CustomerBulkAction):
    display_name = _("Add tags")
    action_type = "add_tags"
    aria_label = _("Add tags to the selected customers")
    action_title = _("Add tags")
    action_question = _("Add these tags to the following customers?")
    form_class = AddTagsForm

    def get_execution_context(self):
        return {"tags": self.cleaned_form.cleaned_data["tags"]}

    @classmethod
    def execute_action(cls, objects, tags=(), **kwargs):
        for customer in objects:
            customer.tags.add(*tags)
        versions.touch(customer.pk for customer in objects)
        audit.customers_edited(objects, ["tags"])
        return len(objects), 0

    def get_success_message(self, num_parent_objects, num_child_objects):
        return ngettext("Tags added to %(count)d customer.", "Tags added to %(count)d customers.", num_parent_objects) % {
            "count": num_parent_objects
        }


class RemoveTagsBulkAction(AddTagsBulkAction):
    display_name = _("Remove tags")
    action_type = "remove_tags"
    aria_label = _("Remove tags from the selected customers")
    action_title = _("Remove tags")
    action_question = _("Remove these tags from the following customers?")

    @classmethod
    def execute_action(cls, objects, tags=(), **kwargs):
        for customer in objects:
            customer.tags.remove(*tags)
        versions.touch(customer.pk for customer in objects)
        audit.customers_edited(objects, ["tags"])
        return len(objects), 0

    def get_success_message(self, num_parent_objects, num_child_objects):
        return ngettext(
            "Tags removed from %(count)d customer.", "Tags removed from %(count)d customers.", num_parent_objects
        ) % {"count": num_parent_objects}


class AddToGroupForm(CustomerBulkForm):
    group = forms.ModelChoiceField(label=_("Group"), queryset=CustomerGroup.objects.order_by("name"))

    def clean_group(self):
        group = self.cleaned_data["group"]
        if group.is_dynamic:
            raise ValidationError(
                _("“%(group)s” is a dynamic group: its members follow its segment “%(segment)s” and cannot be added by hand.")
                % {"group": group, "segment": group.segment}
            )
        return group


class AddToGroupBulkAction(CustomerBulkAction):
    display_name = _("Add to group")
    action_type = "add_to_group"
    aria_label = _("Add the selected customers to a group")
    action_title = _("Add to group")
    action_question = _("Add the following customers to the group?")
    form_class = AddToGroupForm

    def get_execution_context(self):
        return {"group": self.cleaned_form.cleaned_data["group"]}

    @classmethod
    def execute_action(cls, objects, group=None, **kwargs):
        group.customers.add(*objects)
        versions.touch(customer.pk for customer in objects)
        audit.customers_edited(objects, ["groups"])
        return len(objects), 0

    def get_success_message(self, num_parent_objects, num_child_objects):
        return ngettext(
            "%(count)d customer added to the group.", "%(count)d customers added to the group.", num_parent_objects
        ) % {"count": num_parent_objects}


class RemoveFromGroupBulkAction(AddToGroupBulkAction):
    display_name = _("Remove from group")
    action_type = "remove_from_group"
    aria_label = _("Remove the selected customers from a group")
    action_title = _("Remove from group")
    action_question = _("Remove the following customers from the group?")

    @classmethod
    def execute_action(cls, objects, group=None, **kwargs):
        group.customers.remove(*objects)
        versions.touch(customer.pk for customer in objects)
        audit.customers_edited(objects, ["groups"])
        return len(objects), 0

    def get_success_message(self, num_parent_objects, num_child_objects):
        return ngettext(
            "%(count)d customer removed from the group.", "%(count)d customers removed from the group.", num_parent_objects
        ) % {"count": num_parent_objects}


class ArchiveBulkAction(CustomerBulkAction):
    """Archive the selected customers (:mod:`wagtail_clientdb.archive`): the head office any,
    a branch its own local customers."""

    display_name = _("Archive")
    action_type = "archive"
    aria_label = _("Archive the selected customers")
    action_title = _("Archive customers")
    action_question = _(
        "Archive the following customers? They are left out of the customer lists until they are "
        "restored or book again; nothing of them is deleted."
    )
    action_priority = 25

    def check_perm(self, customer):
        return archive.may_archive(self.viewer, customer)

    def get_execution_context(self):
        return {"viewer": self.viewer}

    @classmethod
    def execute_action(cls, objects, viewer=None, **kwargs):
        return archive.archive(viewer, objects), 0

    def get_success_message(self, num_parent_objects, num_child_objects):
        return ngettext("%(count)d customer archived.", "%(count)d customers archived.", num_parent_objects) % {
            "count": num_parent_objects
        }


class RestoreBulkAction(ArchiveBulkAction):
    display_name = _("Restore")
    action_type = "restore"
    aria_label = _("Restore the selected customers from the archive")
    action_title = _("Restore customers")
    action_question = _("Bring the following customers back into the customer lists?")
    action_priority = 26

    @classmethod
    def execute_action(cls, objects, viewer=None, **kwargs):
        return archive.restore(viewer, objects), 0

    def get_success_message(self, num_parent_objects, num_child_objects):
        return ngettext("%(count)d customer restored.", "%(count)d customers restored.", num_parent_objects) % {
            "count": num_parent_objects
        }


class ShareForm(CustomerBulkForm):
    all_branches = forms.BooleanField(
        label=_("Share with all branches"),
        required=False,
        help_text=_("Final: customers shared with all branches cannot be narrowed later."),
    )
    branches = forms.ModelMultipleChoiceField(
        label=_("Also share with these branches"),
        queryset=Branch.objects.order_by("name"),
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("all_branches") and not cleaned.get("branches"):
            raise forms.ValidationError(_("Choose all branches or at least one branch."))
        return cleaned


class ShareWithBranchesBulkAction(CustomerBulkAction):
    """Widens sharing only: customers already shared with all branches stay as they are."""

    display_name = _("Share with branches")
    action_type = "share_with_branches"
    aria_label = _("Share the selected customers with branches")
    action_title = _("Share with branches")
    action_question = _("Share the following customers?")
    form_class = ShareForm

    def check_perm(self, customer):
        return scope.can_manage_sharing(self.viewer)

    def get_execution_context(self):
        cleaned = self.cleaned_form.cleaned_data
        return {"all_branches": cleaned["all_branches"], "branches": cleaned["branches"]}

    @classmethod
    def execute_action(cls, objects, all_branches=False, branches=(), **kwargs):
        changed = sum(
            scope.share_with_more_branches(customer, all_branches=all_branches, branches=branches)
            for customer in objects
        )
        return changed, 0

    def get_success_message(self, num_parent_objects, num_child_objects):
        return ngettext("%(count)d customer shared.", "%(count)d customers shared.", num_parent_objects) % {
            "count": num_parent_objects
        }


class RequestDeletionBulkAction(CustomerBulkAction):
    """Replaces Wagtail's bulk delete for customers: deleting goes through the deletion queue.

    Global customers are deleted only centrally; local ones by their branch.
    """

    display_name = _("Delete")
    action_type = "delete"
    aria_label = _("Delete the selected customers")
    action_title = _("Delete customers")
    action_question = _(
        "Delete the following customers? Each disappears at once from every branch without an "
        "upcoming appointment and is deleted when no upcoming appointment is left."
    )
    action_priority = 30
    classes = {"serious"}

    def check_perm(self, customer):
        return scope.can_delete(self.viewer, customer)

    def get_execution_context(self):
        return {"viewer": self.viewer}

    @classmethod
    def execute_action(cls, objects, viewer=None, **kwargs):
        requests = [deletion.request_deletion(viewer, customer) for customer in objects]
        return sum(r.status == DeletionStatus.DONE for r in requests), sum(r.status != DeletionStatus.DONE for r in requests)

    def get_success_message(self, num_parent_objects, num_child_objects):
        return _("%(deleted)d deleted, %(queued)d queued until their upcoming appointments are over.") % {
            "deleted": num_parent_objects,
            "queued": num_child_objects,
        }


class MergeBulkAction(CustomerBulkAction):
    """Leads to the side-by-side merge view with the selected customers
    (:mod:`wagtail_clientdb.views.merges`): managers merge any customers, branch staff those
    local to their branch."""

    display_name = _("Merge")
    action_type = "merge"
    aria_label = _("Merge the selected customers into one")
    action_priority = 40

    def check_perm(self, customer):
        return merging.may_merge(self.viewer, customer)

    def get(self, request, *args, **kwargs):
        from .merges import merge_url

        if "all" in request.GET.getlist("id"):
            messages.error(request, _("Select the customers to merge, two or more."))
            return redirect(self.next_url)
        objects, no_access = self.get_actionable_objects()
        url = merge_url([*objects, *no_access["items_with_no_access"]])
        next_url = request.GET.get("next")
        return redirect(f"{url}&{urlencode({'next': next_url})}" if next_url else url)

    post = get


class ExportBulkAction(CustomerBulkAction):
    """The selected customers as an XLSX file, with the columns and values of the listing's
    export (as the viewer's branch sees them). "Select all" is the listing's own export."""

    display_name = _("Download XLSX")
    action_type = "export"
    aria_label = _("Download the selected customers as an XLSX file")
    action_priority = 50

    def check_perm(self, customer):
        return True

    def get(self, request, *args, **kwargs):
        if "all" in request.GET.getlist("id"):
            # The listing the selection was made in, with its filters and search.
            query = self.listing_params()
            query["export"] = "xlsx"
            return redirect(f"{reverse(Customer.snippet_viewset.get_url_name('list'))}?{query.urlencode()}")
        objects, _no_access = self.get_actionable_objects()
        if len(objects) > conf.get("EXPORT_BACKGROUND_ROWS"):
            messages.error(request, _("Too many customers selected: use the listing's Export."))
            return redirect(self.next_url)
        viewer = self.viewer
        customers = listing.listing_queryset(viewer, viewer.branch).filter(pk__in=[customer.pk for customer in objects])
        # Recorded as an export of the customers chosen, by their numbers.
        chosen = QueryDict(mutable=True)
        chosen.setlist("id", [str(pk) for pk in sorted(customer.pk for customer in objects)])
        exports.record_export(request.user, viewer, chosen, "xlsx", len(objects))
        zone = times.zone_of(viewer.branch)
        with timezone.override(zone):
            ordered = listing.order(customers, listing.DEFAULT_ORDERING)
            return export.xlsx_response(ordered, f"customers-{times.today(zone):%Y-%m-%d}", viewer=viewer)

    post = get


class AppointmentStatusForm(forms.Form):
    status = forms.ChoiceField(
        label=_("New status"),
        choices=[(status, AppointmentStatus(status).label) for status in STATUS_ACTIONS],
        widget=forms.RadioSelect,
    )


class ChangeAppointmentStatusBulkAction(ScopedBulkActionMixin, SnippetBulkAction):
    """Completed, no-show or cancelled, for the selected appointments of the viewer's branches."""

    display_name = _("Change status")
    action_type = "change_status"
    aria_label = _("Change the status of the selected appointments")
    template_name = "wagtail_clientdb/bulk_actions/confirm.html"
    models = [Appointment]
    form_class = AppointmentStatusForm

    def check_perm(self, appointment):
        return self.permission_policy.user_has_permission_for_instance(self.request.user, "change", appointment)

    def get_context_data(self, **kwargs):
        return {
            **super().get_context_data(**kwargs),
            "action_title": _("Change status"),
            "action_question": _("Change the status of these appointments?"),
            "no_access_message": _("You cannot change these appointments:"),
        }

    def get_execution_context(self):
        return {"status": self.cleaned_form.cleaned_data["status"], "request": self.request}

    @classmethod
    def execute_action(cls, objects, status=None, request=None, **kwargs):
        changed, refused = 0, []
        for appointment in objects:
            try:
                booking.set_status(appointment, status)
                changed += 1
            except ValidationError as refusal:
                refused.extend(refusal.messages)
        if refused:
            messages.warning(request, " ".join(refused))
        return changed, 0

    def get_success_message(self, num_parent_objects, num_child_objects):
        return ngettext(
            "%(count)d appointment changed.", "%(count)d appointments changed.", num_parent_objects
        ) % {"count": num_parent_objects}
