"""Bulk actions on the customer listing, and branch-scoped replacements of Wagtail's bulk delete.

Wagtail's bulk actions load objects by id for any model; ours load them only from what
the viewer may see (:class:`ScopedBulkActionMixin`), so a forged id list reaches nothing
else and reveals nothing of it. Every model of the app has its bulk actions replaced so.
"""

import copy
import datetime
from urllib.parse import urlsplit

from django import forms
from django.contrib.admin.utils import quote
from django.core import signing
from django.core.exceptions import ValidationError
from django.http import Http404, QueryDict
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.functional import cached_property
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from wagtail.admin import messages
from wagtail.admin.forms.tags import TagField
from wagtail.admin.views.bulk_action import BulkAction
from wagtail.snippets.bulk_actions.delete import DeleteBulkAction
from wagtail.snippets.bulk_actions.snippet_bulk_action import SnippetBulkAction

from .. import attributes, booking, bulk_edits, conf, export, exports, groups, listing, scope, times
from .. import tags as tag_names
from ..filters import CustomerFilterSet
from ..models import (
    Appointment,
    AppointmentStatus,
    AttributeDefinition,
    Branch,
    Customer,
    CustomerGroup,
    CustomerTag,
    DeletionRequest,
    DuplicatePair,
    Segment,
    Service,
)
from ..page_queries import page_settings, rendered
from .appointments import STATUS_ACTIONS
from .common import ProtectedDeletionMixin
from .customers import listed_name
from .scoping import scoped_queryset

#: What the confirmation page's name of an object reads besides the object itself.
NAMED_WITH = {Appointment: ("service", "branch")}


class TooManyChosen(Exception):
    """"Select all" chose more objects than an action that changes them one by one takes."""


class ScopedBulkActionMixin:
    def get_scoped_queryset(self):
        return scoped_queryset(self.model, self.request)

    def listing_params(self):
        """The filters, search and order of the listing the action was started from (none when
        it came from elsewhere)."""
        listing_url = reverse(self.model.snippet_viewset.get_url_name("list"))
        came_from = urlsplit(self.next_url)
        return QueryDict(came_from.query if came_from.path == listing_url else "", mutable=True)

    def get_listed_queryset(self):
        """What "select all" chooses: the objects the listing it was used in shows, found by that
        listing's own view with its filters and search. (Wagtail's own bulk actions take every
        object of the model, whatever the listing showed: wagtail/wagtail#12853.)"""
        index_view = self.model.snippet_viewset.index_view
        view = index_view.view_class(**index_view.view_initkwargs)
        listing_request = copy.copy(self.request)
        listing_request.GET = self.listing_params()
        view.setup(listing_request)
        return view.get_queryset()

    @property
    def selects_all(self):
        return "all" in self.request.GET.getlist("id")

    def chosen(self):
        """The objects chosen: those of the listing ("select all"), or those ticked that the
        user may reach (a forged id reaches nothing else)."""
        if self.selects_all:
            return self.get_listed_queryset()
        try:
            return self.get_scoped_queryset().filter(pk__in=self.request.GET.getlist("id"))
        except (ValueError, TypeError, ValidationError):
            raise Http404 from None


class ObjectByObjectBulkActionMixin(ScopedBulkActionMixin):
    """Actions on the app's other models, which load, check and change the chosen objects one
    by one (the customers' actions work on the whole choice at once instead: :mod:`.bulk_edits`)."""

    #: The permission each chosen object needs.
    permission_action = None

    def dispatch(self, request, *args, **kwargs):
        try:
            return super().dispatch(request, *args, **kwargs)
        except TooManyChosen:
            limit = conf.get("BULK_ACTION_MAX_OBJECTS")
            messages.error(
                request,
                _(
                    "“Select all” chose more than %(limit)s %(objects)s, and this action takes at most %(limit)s "
                    "at a time. Narrow the listing with its filters or search and choose again: nothing was changed."
                )
                % {"limit": number_format(limit, force_grouping=True), "objects": self.model._meta.verbose_name_plural},
            )
            return redirect(self.next_url)

    def get_actionable_objects(self):
        chosen = self.chosen()
        # Each object is loaded, checked and changed in turn (and listed on the confirmation
        # page): a listing of two million appointments would take the request down with it.
        if self.selects_all and listing.has_more_than(chosen, conf.get("BULK_ACTION_MAX_OBJECTS")):
            raise TooManyChosen
        named_with = NAMED_WITH.get(self.model, ())
        # Without names, select_related() would join every foreign key (and is deprecated so).
        chosen = list(chosen.select_related(*named_with) if named_with else chosen)
        if not chosen:
            raise Http404
        policy = self.permission_policy
        if hasattr(policy, "instances_user_may"):
            allowed = {obj.pk for obj in policy.instances_user_may(self.request.user, self.permission_action, chosen)}
        else:
            # Wagtail's own model policies answer per object without a query.
            allowed = {obj.pk for obj in chosen if self.check_perm(obj)}
        objects = [obj for obj in chosen if obj.pk in allowed]
        return objects, {"items_with_no_access": [obj for obj in chosen if obj.pk not in allowed]}

    def annotate_items(self, items):
        items = super().annotate_items(items)
        # The confirmation page links each item to its edit view where the user may change it:
        # asked for all of them at once, not by Wagtail's URL finder one by one.
        policy = self.permission_policy
        if hasattr(policy, "instances_user_may"):
            self.editable = {obj.pk for obj in policy.instances_user_may(self.request.user, "change", items)}
        return items

    def object_context(self, obj):
        editable = getattr(self, "editable", None)
        if editable is None:
            return super().object_context(obj)
        edit_url = None
        if obj.pk in editable:
            edit_url = reverse(self.model.snippet_viewset.get_url_name("edit"), args=[quote(obj.pk)])
        context = {"item": obj, "edit_url": edit_url}
        references = getattr(obj, "_usage_references", None)
        if references is not None:
            # What Wagtail's ReferenceIndexMixin (the bulk delete) adds to each item.
            context.update(
                usage_count=references.count(), usage_url=self.get_usage_url(obj), is_protected=references.is_protected
            )
        return context


class ScopedDeleteBulkAction(ProtectedDeletionMixin, ObjectByObjectBulkActionMixin, DeleteBulkAction):
    models = [Appointment, Branch, CustomerGroup, DeletionRequest, DuplicatePair, Segment, Service]
    permission_action = "delete"

    def refused_deletion_url(self):
        return self.next_url

    @cached_property
    def _actionable_objects(self):
        return ObjectByObjectBulkActionMixin.get_actionable_objects(self)

    def get_actionable_objects(self):
        # Read once, as Wagtail's own delete reads them: the hooks after the deletion are given
        # what was deleted, not what is left.
        return self._actionable_objects


class AttributeDeleteBulkAction(ScopedDeleteBulkAction):
    """Deleting attribute definitions deletes their values everywhere, as the delete view does."""

    models = [AttributeDefinition]

    @classmethod
    def execute_action(cls, objects, **kwargs):
        for definition in objects:
            attributes.remove_values(definition)
        return super().execute_action(objects, **kwargs)


OPENED_AT_SALT = "wagtail_clientdb.bulk_action_opened_at"


class CustomerBulkForm(forms.Form):
    #: When the confirmation page was opened (signed): customers changed since are left out.
    opened_at = forms.CharField(widget=forms.HiddenInput, required=False)

    def clean(self):
        cleaned = super().clean()
        try:
            cleaned["opened_at"] = datetime.datetime.fromisoformat(signing.loads(cleaned.get("opened_at") or "", salt=OPENED_AT_SALT))
        except (signing.BadSignature, TypeError, ValueError):
            raise ValidationError(
                _("This page is out of date. Go back to the customers and choose the action again."), code="out_of_date"
            ) from None
        return cleaned


class CustomerBulkAction(ScopedBulkActionMixin, SnippetBulkAction):
    """A bulk action on customers: a selection, or every customer of the listing (or segment)
    it was started from — which may be hundreds of thousands.

    The rule of who may change which customer is asked of the whole choice at once
    (:meth:`split`), the confirmation page counts them and names the first
    :data:`SHOWN_NAMES`, and the action changes them a chunk at a time
    (:mod:`wagtail_clientdb.bulk_edits`). Customers changed after the confirmation page was
    opened are left as they are, and the user is told which (:mod:`wagtail_clientdb.versions`).
    """

    models = [Customer]
    template_name = "wagtail_clientdb/bulk_actions/confirm.html"
    form_class = CustomerBulkForm
    action_title = ""
    action_question = ""
    #: How many of the chosen customers the confirmation page (and a warning) names.
    SHOWN_NAMES = 20

    @classmethod
    def is_shown(cls, request):
        """Whether the listing's footer offers the action to ``request``'s user
        (:mod:`~wagtail_clientdb.templatetags.clientdb_bulk_actions`): one the user may use on
        some customer. Which of the chosen ones it may change is :meth:`split`'s answer."""
        return True

    @cached_property
    def opened_at(self):
        """When the confirmation page was opened (set by :meth:`get`; a form shown again: now)."""
        return timezone.now()

    @cached_property
    def viewer(self):
        return scope.viewer_for_request(self.request)

    def get_listed_queryset(self):
        # "Select all" in a filtered listing (or a segment opened in it) means its customers,
        # never every customer the user may see.
        return self.listed

    @cached_property
    def listed(self):
        return listing.customers_as_listed(self.viewer, self.listing_params())

    @cached_property
    def listed_before_search(self):
        params = self.listing_params()
        params["q"] = ""
        return listing.customers_as_listed(self.viewer, params)

    @cached_property
    def display_branch(self):
        """The branch whose values the listing shows (and the confirmation page names)."""
        return listing.display_branch(self.viewer, CustomerFilterSet(data=self.listing_params(), viewer=self.viewer, only_named=True))

    def split(self, customers):
        """The chosen ``customers`` this action may change, and those it may not (querysets)."""
        return bulk_edits.split(self.action_type, self.viewer, customers)

    def permitted(self, customers):
        return self.split(customers)[0]

    def refused(self, customers):
        return self.split(customers)[1]

    def changed_meanwhile(self, customers):
        """Those the action would change that changed after the confirmation page was opened."""
        return self.permitted(customers).filter(updated_at__gt=self.cleaned_form.cleaned_data["opened_at"])

    def get_actionable_objects(self, *, found=None):
        """``found``: whether any customer was chosen, known already (the confirmation page counts them)."""
        chosen = self.chosen()
        if not (listing.keys(chosen).exists() if found is None else found):
            raise Http404
        permitted, refused = self.split(chosen)
        if self.cleaned_form is not None:
            permitted = permitted.filter(updated_at__lte=self.cleaned_form.cleaned_data["opened_at"])
        return permitted, {"items_with_no_access": refused}

    def get_initial(self):
        return {"opened_at": signing.dumps(self.opened_at.isoformat(), salt=OPENED_AT_SALT)}

    def get_context_data(self, **kwargs):
        permitted, others = self.get_actionable_objects(found=True)
        refused = others["items_with_no_access"]
        # Counted as the listing counts, exactly up to what a request changes: above it the action
        # runs in the background, whose page counts them as it goes (an exact count of 950,000
        # customers cost the page 270 ms). The planner estimates what the listing shows, not the
        # share of it a branch may change.
        limit = conf.get("BULK_ACTION_BACKGROUND_CUSTOMERS")
        estimable = self.viewer.is_manager and (
            not self.selects_all or listing.planner_can_estimate(self.listing_params())
        )
        permitted_count = listing.count(permitted, limit, estimable=estimable)
        refused_count = listing.count(refused, estimable=False)
        if not (permitted_count.number or refused_count.number):
            raise Http404
        # Wagtail's bulk actions list every object chosen; these name a few and count the rest.
        return {
            **super(BulkAction, self).get_context_data(**kwargs),
            "items": self.names(self.permitted),
            "items_count": permitted_count.number,
            "items_summary": self.summary(permitted_count),
            "items_not_shown": self.not_shown(permitted_count),
            "in_background": permitted_count.number > limit,
            # Named while they are few enough to count: which twenty of "more than 10,000" says little.
            "items_with_no_access": self.names(self.refused) if refused_count.number and not refused_count.is_lower_bound else [],
            "no_access_count": refused_count.number,
            "no_access_summary": self.summary(refused_count),
            "no_access_not_shown": self.not_shown(refused_count),
            "next": self.next_url,
            "submit_url": self.request.path + "?" + self.request.META["QUERY_STRING"],
            "model_opts": self.model._meta,
            "header_icon": self.model.snippet_viewset.icon,
            "action_title": self.action_title,
            "action_question": self.action_question,
            "no_access_message": _("You cannot change these customers:"),
            "no_access_reason": bulk_edits.refusal_reason(self.action_type, self.viewer) if refused_count.number else "",
        }

    def names(self, part):
        """The names of the first :data:`SHOWN_NAMES` of a ``part`` of the chosen customers (a
        function of a queryset of them: :meth:`permitted`, :meth:`refused` …) in the listing's
        order, as the viewer's branch sees them: read by their sort keys, as the listing reads a
        page, a search's first matches from the listing before it."""
        params = self.listing_params()
        branch = self.display_branch
        rows = listing.listing_queryset(self.viewer, branch).prefetch_related(None)  # names only
        query, unsearched = "", None
        if self.selects_all:
            customers, query = part(self.listed), params.get("q", "").strip()
            if query:
                unsearched = part(self.listed_before_search)
        else:
            customers = part(rows.filter(pk__in=listing.keys(self.chosen())))
        ids = listing.page_ids(
            customers, branch, params.get("ordering"), 0, self.SHOWN_NAMES, query=query, unsearched=unsearched
        )
        return [listed_name(customer) for customer in listing.in_order(rows, ids)]

    @staticmethod
    def summary(counted):
        """"3,807 customers", "about 580,000 customers" (a :class:`listing.Counted`)."""
        return ngettext("%(count)s customer", "%(count)s customers", counted.number) % {"count": counted.label}

    def not_shown(self, counted):
        """"… and 3,787 more": those the page does not name (nothing for an estimate)."""
        rest = counted.number - self.SHOWN_NAMES
        if rest <= 0 or counted.is_estimate:
            return ""
        return ngettext("… and %(count)s more", "… and %(count)s more", rest) % {
            "count": number_format(rest, force_grouping=True)
        }

    def get(self, request, *args, **kwargs):
        # Taken before the customers are read: a change after their reading is after it.
        self.opened_at = timezone.now()
        with page_settings():
            return rendered(super().get(request, *args, **kwargs))

    def prepare_action(self, objects, objects_without_access):
        stale = listing.Counted(listing.count_exactly(self.changed_meanwhile(self.chosen())))
        if stale.number:
            names = ", ".join(self.names(self.changed_meanwhile))
            messages.warning(
                self.request,
                ngettext(
                    "%(count)s customer was added or changed after you opened this page and was left as it is: %(names)s",
                    "%(count)s customers were added or changed after you opened this page and were left as they are: %(names)s",
                    stale.number,
                )
                % {"count": stale.label, "names": f"{names} {self.not_shown(stale)}".strip()},
            )

    def options(self):
        """What the form chose, as JSON (:class:`~wagtail_clientdb.bulk_edits.Change`)."""
        return {}

    def get_execution_context(self):
        return {
            "change": bulk_edits.Change(self.action_type, self.viewer, self.options()),
            "opened_at": self.cleaned_form.cleaned_data["opened_at"],
        }

    @classmethod
    def execute_action(cls, objects, change=None, opened_at=None, **kwargs):
        done = queued = 0
        for customers in bulk_edits.chunks(set(listing.keys(objects).values_list("pk", flat=True)), unchanged_since=opened_at):
            done_here, queued_here = change(customers)
            done, queued = done + done_here, queued + queued_here
        return done, queued

    def form_valid(self, form):
        self.cleaned_form = form
        if self.selects_all:
            permitted, _refused = self.get_actionable_objects()
            if bulk_edits.in_background(permitted):
                job = bulk_edits.start_job(
                    self.request.user, self.viewer, self.action_type, self.listing_params(), self.options(),
                    form.cleaned_data["opened_at"],
                )
                return redirect(reverse(Customer.snippet_viewset.get_url_name("bulk_action_job"), args=(job.pk,)))
        return super().form_valid(form)


class AddTagsForm(CustomerBulkForm):
    tags = TagField(label=_("Tags"), tag_model=CustomerTag)

    def clean_tags(self):
        """The names by the tag rule (:func:`wagtail_clientdb.tags.clean_names`): names of only
        invisible characters are none, as empty ones."""
        names = tag_names.clean_names(self.cleaned_data["tags"])
        if not names:
            raise ValidationError(self.fields["tags"].error_messages["required"], code="required")
        return names


class AddTagsBulkAction(CustomerBulkAction):
    display_name = _("Add tags")
    action_type = "add_tags"
    aria_label = _("Add tags to the selected customers")
    action_title = _("Add tags")
    action_question = _("Add these tags to the following customers?")
    form_class = AddTagsForm

    def options(self):
        return {"tags": list(self.cleaned_form.cleaned_data["tags"])}

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

    def get_success_message(self, num_parent_objects, num_child_objects):
        return ngettext(
            "Tags removed from %(count)d customer.", "Tags removed from %(count)d customers.", num_parent_objects
        ) % {"count": num_parent_objects}


class AddToGroupForm(CustomerBulkForm):
    # A dynamic group's members follow its segment's rule: nobody adds them by hand.
    group = forms.ModelChoiceField(label=_("Group"), queryset=groups.manual_groups().order_by("name"))


class AddToGroupBulkAction(CustomerBulkAction):
    display_name = _("Add to group")
    action_type = "add_to_group"
    aria_label = _("Add the selected customers to a group")
    action_title = _("Add to group")
    action_question = _("Add the following customers to the group?")
    form_class = AddToGroupForm

    def options(self):
        return {"group": self.cleaned_form.cleaned_data["group"].pk}

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

    @classmethod
    def is_shown(cls, request):
        return scope.can_manage_sharing(scope.viewer_for_request(request))

    def options(self):
        cleaned = self.cleaned_form.cleaned_data
        return {"all_branches": cleaned["all_branches"], "branches": [branch.pk for branch in cleaned["branches"]]}

    def get_success_message(self, num_parent_objects, num_child_objects):
        return ngettext("%(count)d customer shared.", "%(count)d customers shared.", num_parent_objects) % {
            "count": num_parent_objects
        }


class RequestDeletionBulkAction(CustomerBulkAction):
    """Replaces Wagtail's bulk delete for customers: deleting goes through the deletion queue.

    Global customers are deleted only centrally; local ones by their branch (:func:`~wagtail_clientdb.bulk_edits.split`).
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

    def get_success_message(self, num_parent_objects, num_child_objects):
        return _("%(deleted)d deleted, %(queued)d queued until their upcoming appointments are over.") % {
            "deleted": num_parent_objects,
            "queued": num_child_objects,
        }


class MergeBulkAction(CustomerBulkAction):
    """Leads to the side-by-side merge view with the selected customers
    (:mod:`wagtail_clientdb.views.merges`): managers merge any customers, branch staff those
    local to their branch (:func:`wagtail_clientdb.merging.may_merge`, which the merge view asks)."""

    display_name = _("Merge")
    action_type = "merge"
    aria_label = _("Merge the selected customers into one")
    action_priority = 40

    def get(self, request, *args, **kwargs):
        from .merges import merge_url

        if self.selects_all:
            messages.error(request, _("Select the customers to merge, two or more."))
            return redirect(self.next_url)
        objects, no_access = self.get_actionable_objects()
        chosen = [*listing.keys(objects).values_list("pk", flat=True), *listing.keys(no_access["items_with_no_access"]).values_list("pk", flat=True)]
        url = merge_url(sorted(chosen))
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

    def split(self, customers):
        return customers, customers.none()

    def get(self, request, *args, **kwargs):
        if self.selects_all:
            # The listing the selection was made in, with its filters and search.
            query = self.listing_params()
            query["export"] = "xlsx"
            return redirect(f"{reverse(Customer.snippet_viewset.get_url_name('list'))}?{query.urlencode()}")
        objects, _no_access = self.get_actionable_objects()
        chosen_ids = sorted(listing.keys(objects).values_list("pk", flat=True))
        if len(chosen_ids) > conf.get("EXPORT_BACKGROUND_ROWS"):
            messages.error(request, _("Too many customers selected: use the listing's Export."))
            return redirect(self.next_url)
        viewer = self.viewer
        customers = listing.listing_queryset(viewer, viewer.branch).filter(pk__in=chosen_ids)
        # Recorded as an export of the customers chosen, by their numbers.
        chosen = QueryDict(mutable=True)
        chosen.setlist("id", [str(pk) for pk in chosen_ids])
        exports.record_export(request.user, viewer, chosen, "xlsx", len(chosen_ids))
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


class ChangeAppointmentStatusBulkAction(ObjectByObjectBulkActionMixin, SnippetBulkAction):
    """Completed, no-show or cancelled, for the selected appointments of the viewer's branches."""

    display_name = _("Change status")
    action_type = "change_status"
    aria_label = _("Change the status of the selected appointments")
    template_name = "wagtail_clientdb/bulk_actions/confirm.html"
    models = [Appointment]
    form_class = AppointmentStatusForm
    permission_action = "change"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        return {
            **context,
            "items": [item["item"] for item in context["items"]],
            "items_count": len(context["items"]),
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

