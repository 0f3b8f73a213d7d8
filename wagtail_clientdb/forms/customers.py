from django import forms
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext_lazy as _
from wagtail.admin.forms import WagtailAdminModelForm

from .. import attribute_types, attributes, overrides, scope
from ..consent import record_consent
from ..contact import PHONE_INVALID_MESSAGE, normalise_email, parse_phone
from ..models import AttributeTarget, Branch, ClientDBSettings, ConsentChannel

SHARING_ALL = "all"
SHARING_SPECIFIC = "specific"


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

    def __init__(self, *args, viewer=None, **kwargs):
        self.viewer = viewer
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
        self.attribute_definitions = attributes.active_definitions(AttributeTarget.CUSTOMER)
        stored = self.effective.attributes if self.effective else self.instance.attributes
        attributes.add_form_fields(self, self.attribute_definitions, stored)

        if self.mode == scope.EditMode.OVERRIDE:
            self._limit_to_local_fields()
        else:
            del self.fields["reset_to_global"]
        if viewer is not None and scope.can_manage_sharing(viewer):
            self._init_sharing()
        else:
            self.fields.pop("sharing", None)
            self.fields.pop("share_branches", None)

    def _limit_to_local_fields(self):
        keep = {*overrides.OVERRIDABLE_FIELDS, "reset_to_global"}
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
            else:
                field_name = name
                global_value = getattr(self.instance, name)
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
        else:
            self.fields["sharing"].initial = SHARING_SPECIFIC
            if instance.pk:
                self.fields["share_branches"].initial = list(instance.branches.all())
        if instance.pk and instance.home_branch_id:
            self.fields["sharing"].help_text = _(
                "This is a local customer of %(branch)s. Sharing it makes it a customer of the "
                "whole company, still seen by %(branch)s."
            ) % {"branch": instance.home_branch}
            self.fields["sharing"].required = False
            self.fields["sharing"].initial = ""

    def clean_email(self):
        return normalise_email(self.cleaned_data.get("email"))

    def clean_phone_raw(self):
        parsed = parse_phone(self.cleaned_data.get("phone_raw"), self.phone_region)
        if not parsed.is_valid:
            raise ValidationError(PHONE_INVALID_MESSAGE, code="invalid_phone", params={"region": self.phone_region})
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
                scope.check_sharing(self.instance, all_branches=cleaned.get("sharing") == SHARING_ALL)
            except ValidationError as error:
                self.add_error("sharing", error)
        return cleaned

    @transaction.atomic
    def save(self, commit=True):
        user = self.for_user
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
