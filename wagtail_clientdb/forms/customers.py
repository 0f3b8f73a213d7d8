import datetime

from django import forms
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _
from wagtail.admin.forms import WagtailAdminModelForm

from .. import attribute_types, attributes, groups, matching, overrides, scope, times, versions
from .. import tags as tag_names
from ..consent import record_consent
from ..contact import PHONE_INVALID_MESSAGE, format_phone, normalise_email, normalise_text, parse_phone
from ..models import AttributeTarget, Branch, ClientDBSettings, ConsentChannel, Customer

SHARING_ALL = "all"
SHARING_SPECIFIC = "specific"


class FoundMeanwhile(Exception):
    """While a new customer was being saved, someone they may be was created (a booking, an
    import): nothing was saved, and the form names them (``possible_duplicates``)."""


class CustomerForm(WagtailAdminModelForm):
    """The customer edit form; what it shows and how it saves depends on the viewer.

    * direct: the one record is changed (managers; a branch on its own local customers);
    * override: a branch's changes to a global customer are kept as its local values,
      and only the fields that can hold local values are offered.

    Managers also see the sharing fields; they are form fields, not model fields, so
    every change of scope goes through :func:`wagtail_clientdb.scope.set_sharing`.
    """

    sharing = forms.ChoiceField(
        label=_("Share with"),
        choices=[
            (SHARING_ALL, _("All branches, including branches added later")),
            (SHARING_SPECIFIC, _("Specific branches")),
        ],
        widget=forms.RadioSelect,
        required=False,
        help_text=_("Sharing with all branches is final: it cannot be narrowed later."),
    )
    share_branches = forms.ModelMultipleChoiceField(
        label=_("Branches"),
        queryset=Branch.objects.order_by("name"),
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )
    reset_to_global = forms.MultipleChoiceField(
        label=_("Use the global value again for"),
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )
    #: The versions and values the form was made from (:mod:`wagtail_clientdb.versions`).
    edit_base = forms.CharField(widget=forms.HiddenInput, required=False)

    #: The button that creates a new customer although it may be someone already there sends
    #: the ids of the customers the warning named.
    CREATE_ANYWAY = "create_anyway"

    def __init__(self, *args, viewer=None, **kwargs):
        self.viewer = viewer
        #: Customers a new one may be (:func:`wagtail_clientdb.matching.possible_duplicates`).
        self.possible_duplicates = []
        instance = kwargs.get("instance")
        self.mode = scope.edit_mode(viewer, instance) if instance and instance.pk else scope.EditMode.DIRECT
        self.effective = None
        if self.mode == scope.EditMode.OVERRIDE:
            self.effective = overrides.effective_customer(instance, viewer.branch)
            kwargs["initial"] = {
                **{name: self.effective.value(name) for name in overrides.OVERRIDABLE_FIELDS},
                **kwargs.get("initial", {}),
            }
        super().__init__(*args, **kwargs)
        self.phone_region = ClientDBSettings.load().default_phone_region
        # The phone is shown as everywhere else (formatted), whatever was typed when it was stored.
        if self.effective:
            self.stored_phone = (self.effective.value("phone"), self.effective.value("phone_raw"))
        else:
            self.stored_phone = (self.instance.phone, self.instance.phone_raw)
        if self.instance.pk:
            self.initial["phone_raw"] = format_phone(*self.stored_phone)
        self.attribute_definitions = attributes.active_definitions(AttributeTarget.CUSTOMER)
        stored = self.effective.attributes if self.effective else self.instance.attributes
        attributes.add_form_fields(self, self.attribute_definitions, stored)

        if "groups" in self.fields:
            # A dynamic group's members follow its rule: it is not chosen by hand.
            self.fields["groups"].queryset = groups.manual_groups().order_by("name")
        if self.mode == scope.EditMode.OVERRIDE:
            self._limit_to_local_fields()
        else:
            del self.fields["reset_to_global"]
        if viewer is not None and not scope.gives_external_ids(viewer):
            self.fields.pop("external_id", None)
        if viewer is not None and scope.can_manage_sharing(viewer):
            self._init_sharing()
        else:
            self.fields.pop("sharing", None)
            self.fields.pop("share_branches", None)
        if not self.instance.pk:
            del self.fields["edit_base"]
        elif not self.is_bound:
            self.fields["edit_base"].initial = self.make_edit_base()

    # --- No lost updates ----------------------------------------------------------------------------

    @property
    def local_branch(self):
        return self.viewer.branch if self.mode == scope.EditMode.OVERRIDE else None

    def shown_values(self):
        """What this (unbound) form shows, as text per field."""
        return {name: shown_text(self[name]) for name in self.fields if name not in ("edit_base", "reset_to_global")}

    def make_edit_base(self):
        return versions.edit_base(versions.current_versions(self.instance, self.local_branch), self.shown_values())

    def check_not_stale(self):
        """Refuse the save if what the form showed was changed meanwhile (call with the row locked to be sure)."""
        fresh = Customer.objects.get(pk=self.instance.pk)
        now = type(self)(instance=fresh, viewer=self.viewer, for_user=self.for_user)
        base = versions.read_edit_base(self.data.get(self.add_prefix("edit_base")))
        labels = {name: field.label for name, field in self.fields.items()}
        try:
            if now.mode != self.mode:
                # Shared or unshared meanwhile: this form would save where the customer no longer
                # is (a branch's changes on the record of a customer now shared, or the reverse).
                raise versions.StaleEdit([("branches", capfirst(Customer._meta.get_field("branches").verbose_name), "", "")])
            versions.check_base(base, versions.current_versions(fresh, self.local_branch), now.shown_values(), labels)
        except versions.StaleEdit as stale:
            self.show_stale(stale, now)
            raise

    def take_unedited_columns(self, locked):
        """Take the record's columns this form does not edit as they are now, under the lock.

        The instance was read when the request began; saving it writes every column. What
        changed since in a column the form does not show (the booking counts of a booking
        made meanwhile, the sharing, the source, attributes without a field here) passed the
        check of what the form showed, and would otherwise be written back as it was read.
        """
        # The phone's E.164 form follows phone_raw; the version is raised in the UPDATE itself.
        edited = {*self.fields, "phone", "version", "updated_at"}
        for field in Customer._meta.concrete_fields:
            if not field.primary_key and field.name not in edited:
                setattr(self.instance, field.attname, getattr(locked, field.attname))

    def show_stale(self, stale, now):
        """Mark the fields changed meanwhile with their new values; the form's base moves to
        now, so that saving again keeps what the user sees in the form."""
        for name, _label, _then, value in stale.changes:
            if name in self.fields:
                self.add_error(name, _("Changed meanwhile to: %(value)s") % {"value": value or "–"})
        data = self.data.copy()
        data[self.add_prefix("edit_base")] = now.fields["edit_base"].initial
        self.data = data

    def _limit_to_local_fields(self):
        keep = {*overrides.OVERRIDABLE_FIELDS, "reset_to_global", "edit_base"}
        for name in list(self.fields):
            if name not in keep and not name.startswith(attributes.FIELD_PREFIX):
                del self.fields[name]
        definitions = {d.key: d for d in self.attribute_definitions}
        choices = []
        for name in self.effective.local_fields:
            if name.startswith(overrides.ATTRIBUTE_PREFIX):
                key = name[len(overrides.ATTRIBUTE_PREFIX) :]
                if key not in definitions:
                    continue
                field_name = attributes.FIELD_PREFIX + key
                global_value = attribute_types.display(definitions[key], (self.instance.attributes or {}).get(key))
            elif name == "phone_raw":
                field_name = name
                global_value = format_phone(self.instance.phone, self.instance.phone_raw)
            else:
                field_name = name
                global_value = getattr(self.instance, name)
                if isinstance(global_value, datetime.date):  # the birthday
                    global_value = times.day(global_value)
            if field_name not in self.fields:
                continue
            self.fields[field_name].help_text = _("Local value of %(branch)s. Global value: %(value)s") % {
                "branch": self.viewer.branch,
                "value": global_value if global_value not in (None, "") else "–",
            }
            choices.append((name, self.fields[field_name].label))
        if choices:
            self.fields["reset_to_global"].choices = choices
        else:
            del self.fields["reset_to_global"]

    def _init_sharing(self):
        instance = self.instance
        if instance.pk and instance.shared_with_all_branches:
            self.fields["sharing"].initial = SHARING_ALL
            self.fields["sharing"].disabled = True
            self.fields["sharing"].help_text = scope.ALL_BRANCHES_IS_FINAL
            self.fields["share_branches"].disabled = True
        elif instance.pk:
            self.fields["sharing"].initial = SHARING_SPECIFIC
            self.fields["share_branches"].initial = list(instance.branches.all())
        else:
            # A new customer's sharing is chosen, not defaulted: "specific branches" with none
            # ticked would make a customer no branch sees.
            self.fields["sharing"].required = True
        if instance.pk and instance.home_branch_id:
            self.fields["sharing"].help_text = _(
                "This is a local customer of %(branch)s. Sharing it makes it a customer of the "
                "whole company, still seen by %(branch)s."
            ) % {"branch": instance.home_branch}
            self.fields["sharing"].required = False
            self.fields["sharing"].initial = ""

    def clean_email(self):
        return normalise_email(self.cleaned_data.get("email"))

    def clean_first_name(self):
        return normalise_text(self.cleaned_data.get("first_name"))

    def clean_last_name(self):
        return normalise_text(self.cleaned_data.get("last_name"))

    def clean_notes(self):
        return normalise_text(self.cleaned_data.get("notes"))

    def clean_tags(self):
        """The names by the tag rule (:func:`wagtail_clientdb.tags.clean_names`); the tags are
        found or made as the form saves (``customer.tags.set``)."""
        return tag_names.clean_names(self.cleaned_data.get("tags") or [])

    def clean_phone_raw(self):
        parsed = parse_phone(self.cleaned_data.get("phone_raw"), self.phone_region)
        if not parsed.is_valid:
            raise ValidationError(PHONE_INVALID_MESSAGE, code="invalid_phone", params={"region": self.phone_region})
        stored_e164, stored_raw = self.stored_phone
        if parsed.e164 and parsed.e164 == stored_e164:
            # The same number sent back as shown: keep it as it was typed, not a change.
            return stored_raw
        return parsed.raw

    def clean(self):
        cleaned = super().clean()
        if self.mode == scope.EditMode.READ_ONLY:
            raise ValidationError(_("You cannot change this customer."), code="read_only")
        contact = [cleaned.get(name) for name in ("first_name", "last_name", "email", "phone_raw")]
        if not any(contact) and not self.errors:
            raise ValidationError(
                _("Enter at least a name, an email address or a phone number."), code="no_contact"
            )
        if "sharing" in self.fields and not self.fields["sharing"].disabled:
            try:
                scope.check_sharing(
                    self.instance, all_branches=cleaned.get("sharing") == SHARING_ALL, branches=cleaned.get("share_branches")
                )
            except ValidationError as error:
                self.add_error("sharing", error)
            if not self.instance.pk and cleaned.get("sharing"):
                try:
                    scope.require_a_branch(
                        all_branches=cleaned["sharing"] == SHARING_ALL, branches=cleaned.get("share_branches")
                    )
                except ValidationError as error:
                    self.add_error("share_branches", error)
        if self.instance.pk and not self.errors:
            try:
                self.check_not_stale()
            except versions.StaleEdit as stale:
                self.add_error(None, stale)
        if not self.instance.pk and not self.errors and self.viewer is not None:
            self.check_possible_duplicates(cleaned)
        return cleaned

    def check_possible_duplicates(self, cleaned):
        """A new customer who may be someone the viewer already has is not created yet: the form
        comes back naming them, with a button to create it anyway. That button counts for the
        customers it named; another one found meanwhile is named again.

        Checked again when saving (:meth:`check_none_created_meanwhile`)."""
        phone = parse_phone(cleaned.get("phone_raw"), self.phone_region)
        person = matching.Person(
            first_name=cleaned.get("first_name") or "",
            last_name=cleaned.get("last_name") or "",
            email=cleaned.get("email") or "",
            phone=phone.e164,
            phone_raw=phone.raw,
            birthday=cleaned.get("birthday"),
        )
        (found,) = matching.possible_duplicates(self.viewer, [person])
        confirmed = set(self.data.get(self.CREATE_ANYWAY, "").split(","))
        if found and not {str(match.customer.pk) for match in found} <= confirmed:
            self.possible_duplicates = found
            self.add_error(
                None,
                ValidationError(
                    _("This may be a customer you already have. Open it, or create the new customer anyway."),
                    code="possible_duplicate",
                ),
            )

    def check_none_created_meanwhile(self):
        """In the saving transaction, with the person's keys locked as a booking locks them
        (:func:`wagtail_clientdb.matching.lock_identity`) and no import writing
        (:func:`~wagtail_clientdb.matching.wait_for_imports`): raise :class:`FoundMeanwhile` when
        someone the new customer may be was created since :meth:`clean` looked."""
        cleaned = self.cleaned_data
        keys = matching.IdentityKeys.from_input(
            external_id=cleaned.get("external_id") or "",
            email=cleaned.get("email") or "",
            phone=cleaned.get("phone_raw") or "",
            region=self.phone_region,
        )
        if not keys:
            return
        matching.lock_identity(keys)
        matching.wait_for_imports()
        self.check_possible_duplicates(cleaned)
        if self.possible_duplicates:
            raise FoundMeanwhile

    @transaction.atomic
    def save(self, commit=True):
        """Raises :class:`~wagtail_clientdb.versions.StaleEdit` (and saves nothing) when the
        customer changed since :meth:`clean`, :class:`FoundMeanwhile` when a new customer may
        be someone created since; the view shows them as form errors."""
        user = self.for_user
        if self.instance.pk:
            locked = Customer.objects.select_for_update().filter(pk=self.instance.pk).first()
            self.check_not_stale()
            if locked is not None and self.mode != scope.EditMode.OVERRIDE:
                self.take_unedited_columns(locked)
        elif self.viewer is not None:
            self.check_none_created_meanwhile()
        if self.mode == scope.EditMode.OVERRIDE:
            values = {name: self.cleaned_data[name] for name in overrides.OVERRIDABLE_FIELDS if name in self.fields}
            overrides.save_local_values(
                self.instance,
                self.viewer.branch,
                values,
                attributes=attributes.values_from_form(self, self.attribute_definitions),
                user=user,
            )
            overrides.reset_to_global(
                self.instance, self.viewer.branch, self.cleaned_data.get("reset_to_global", []), user=user
            )
            # The bound form wrote the branch's values into the instance; the record is unchanged.
            self.instance.refresh_from_db()
            return self.instance

        is_new = self.instance.pk is None
        if is_new:
            scope.apply_new_customer_scope(self.viewer, self.instance)
        previous_consent = False if is_new else bool(self.initial.get("marketing_consent"))
        self.instance.attributes = attributes.merged(
            self.instance.attributes, attributes.values_from_form(self, self.attribute_definitions)
        )
        customer = super().save(commit=True)
        if "marketing_consent" in self.fields:
            record_consent(
                customer, self.cleaned_data["marketing_consent"], ConsentChannel.ADMIN, user, previous=previous_consent
            )
        if "sharing" in self.fields and not self.fields["sharing"].disabled:
            sharing = self.cleaned_data.get("sharing")
            branches = self.cleaned_data.get("share_branches") or []
            if sharing == SHARING_ALL or (sharing == SHARING_SPECIFIC and not customer.home_branch_id) or branches:
                scope.set_sharing(customer, all_branches=sharing == SHARING_ALL, branches=branches)
        return customer


def shown_text(bound_field):
    """A form field's value as the form shows it, as comparable text (choices by their labels)."""
    field = bound_field.field
    value = bound_field.value()
    if isinstance(field, forms.BooleanField):
        return str(_("yes") if value else _("no"))
    values = value if isinstance(value, (list, tuple)) else [value]
    values = [v for v in values if v not in (None, "")]
    choices = getattr(field, "choices", None)
    if choices is not None:
        labels = {str(key): str(label) for key, label in choices}
        values = [labels.get(str(v), str(v)) for v in values]
    texts = [times.day(v) if isinstance(v, datetime.date) else str(getattr(v, "name", v)) for v in values]
    return ", ".join(sorted(texts)) if len(texts) > 1 else (texts[0] if texts else "")
