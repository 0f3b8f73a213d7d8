"""A customer's personal data, for their request to see it or take it (rules in
:mod:`wagtail_clientdb.personal_data`)."""

from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.generic import TemplateView
from wagtail.admin.views.generic import WagtailAdminTemplateMixin
from wagtail.admin.views.generic.permissions import PermissionCheckedMixin

from .. import personal_data
from ..models import Customer
from .common import CustomerPageMixin


class PersonalDataView(CustomerPageMixin, PermissionCheckedMixin, WagtailAdminTemplateMixin, TemplateView):
    """Managers only: the data of every branch, which a branch's staff may not all see."""

    model = Customer
    permission_required = "view"
    template_name = "wagtail_clientdb/customers/personal_data.html"
    header_icon = "download"
    breadcrumb_label = gettext_lazy("Personal data")

    def dispatch(self, request, *args, **kwargs):
        if not self.viewer.is_manager:
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)


    def get_page_title(self):
        return _("Personal data of %(customer)s") % {"customer": self.customer}


    def get(self, request, *args, **kwargs):
        data = personal_data.collect(self.customer)
        if request.GET.get("format") == "json":
            personal_data.record_download(self.customer, request.user, "json")
            response = HttpResponse(personal_data.as_json(data), content_type="application/json; charset=utf-8")
            response["Content-Disposition"] = f'attachment; filename="customer-{self.customer.pk}-personal-data.json"'
            return response
        personal_data.record_download(self.customer, request.user, "html")
        return self.render_to_response(self.get_context_data(data=personal_data.readable(data), json_url=f"{request.path}?format=json"))
