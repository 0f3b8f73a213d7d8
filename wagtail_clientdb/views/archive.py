"""Archive one customer, or restore it, from its inspect page (rules in
:mod:`wagtail_clientdb.archive`)."""

from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.generic import TemplateView
from wagtail.admin import messages
from wagtail.admin.views.generic import WagtailAdminTemplateMixin
from wagtail.admin.views.generic.permissions import PermissionCheckedMixin

from .. import archive
from ..models import Customer
from .common import CustomerPageMixin


class ArchiveView(CustomerPageMixin, PermissionCheckedMixin, WagtailAdminTemplateMixin, TemplateView):
    """Asks first (GET), then archives or restores (POST). Another branch's customer is not
    found; one the viewer may not change directly is refused."""

    model = Customer
    permission_required = "change"
    template_name = "wagtail_clientdb/customers/archive.html"
    header_icon = "user"
    #: Set in the URL pattern: this view restores instead of archiving.
    restoring = False

    def dispatch(self, request, *args, **kwargs):
        self.restoring = kwargs.pop("restoring", False)
        return super().dispatch(request, *args, **kwargs)


    def get(self, request, *args, **kwargs):
        if not archive.may_archive(self.viewer, self.customer):
            raise PermissionDenied
        return super().get(request, *args, **kwargs)

    def post(self, request, *args, **kwargs):
        customer = self.customer
        if not archive.may_archive(self.viewer, customer):
            raise PermissionDenied
        if self.restoring:
            archive.restore(self.viewer, [customer])
            messages.success(request, _("%(customer)s is back in the customer lists.") % {"customer": customer})
        else:
            archive.archive(self.viewer, [customer])
            messages.success(
                request, _("%(customer)s is archived: left out of the customer lists until restored or booked again.")
                % {"customer": customer}
            )
        return redirect(self.inspect_url())

    def get_page_title(self):
        if self.restoring:
            return _("Restore %(customer)s") % {"customer": self.customer}
        return _("Archive %(customer)s") % {"customer": self.customer}



    def get_context_data(self, **kwargs):
        return {
            **super().get_context_data(**kwargs),
            "customer": self.customer,
            "restoring": self.restoring,
            "is_archived": self.customer.is_archived,
            "inspect_url": self.inspect_url(),
        }
