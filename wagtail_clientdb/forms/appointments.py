from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _
from wagtail.admin.forms import WagtailAdminModelForm

from .. import attributes, booking, scope
from ..deletion import BookingRefused
from ..models import AttributeTarget


class AppointmentForm(WagtailAdminModelForm):
    """Appointments are booked for customers and in branches the viewer can see."""

    def __init__(self, *args, viewer=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.viewer = viewer
        self.attribute_definitions = attributes.active_definitions(AttributeTarget.BOOKING)
        attributes.add_form_fields(self, self.attribute_definitions, self.instance.attributes)
        if viewer is not None:
            self.fields["customer"].queryset = scope.visible_customers(viewer)
            self.fields["branch"].queryset = scope.visible_branches(viewer).order_by("name")
            if viewer.branch is not None and not self.instance.pk:
                self.fields["branch"].initial = viewer.branch.pk
            # The staff member already booked stays a valid choice, even after leaving the branch.
            current_staff = get_user_model().objects.filter(pk=self.instance.staff_id)
            self.fields["staff"].queryset = scope.staff_choices(viewer) | current_staff
            self.fields["staff"].label_from_instance = staff_name

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end and end <= start:
            self.add_error("end", _("The appointment must end after it starts."))
        staff, branch = cleaned.get("staff"), cleaned.get("branch")
        reassigned = {"staff", "branch"} & set(self.changed_data)
        if staff and branch and reassigned and not branch.memberships.filter(user=staff).exists():
            self.add_error(
                "staff", _("%(staff)s does not work in %(branch)s.") % {"staff": staff_name(staff), "branch": branch}
            )
        return cleaned

    def _post_clean(self):
        super()._post_clean()
        if not self.errors:
            try:
                booking.check_can_book(self.instance)
            except BookingRefused as refusal:
                self.add_error("customer", refusal)

    def save(self, commit=True):
        """Saves through :func:`wagtail_clientdb.booking.save_appointment`, which may raise BookingRefused."""
        self.instance.attributes = attributes.merged(
            self.instance.attributes, attributes.values_from_form(self, self.attribute_definitions)
        )
        appointment = super().save(commit=False)
        if commit:
            booking.save_appointment(appointment)
            self.save_m2m()
        return appointment


def staff_name(user):
    return user.get_full_name() or user.get_username()
