"""Block a customer from online booking, change the block, or lift it (rules in
:mod:`wagtail_clientdb.booking_blocks`)."""

from django.shortcuts import redirect
from django.utils.functional import cached_property
from django.utils.translation import gettext as _
from django.views.generic import FormView
from wagtail.admin import messages
from wagtail.admin.views.generic import WagtailAdminTemplateMixin
from wagtail.admin.views.generic.permissions import PermissionCheckedMixin

from .. import booking_blocks
from ..forms.booking_blocks import BookingBlockForm
from ..models import Customer
from .common import CustomerPageMixin


class BookingBlockView(CustomerPageMixin, PermissionCheckedMixin, WagtailAdminTemplateMixin, FormView):
    """Anyone who may change the customers they see may block one of them; only managers
    narrow a block to some branches."""

    model = Customer
    permission_required = "change"
    template_name = "wagtail_clientdb/customers/booking_block.html"
    header_icon = "user"


    @cached_property
    def block(self):
        return booking_blocks.block_of(self.customer)

    def get_page_title(self):
        return _("Online booking of %(customer)s") % {"customer": self.customer}



    def get_form_kwargs(self):
        kwargs = {**super().get_form_kwargs(), "may_choose_branches": self.viewer.is_manager}
        if self.block is not None:
            kwargs["initial"] = {"reason": self.block.reason, "branches": list(self.block.branches.all())}
        return kwargs

    def get_form_class(self):
        return BookingBlockForm

    def post(self, request, *args, **kwargs):
        if "lift" in request.POST:
            booking_blocks.lift(self.customer, user=request.user)
            messages.success(request, _("%(customer)s can book online again.") % {"customer": self.customer})
            return redirect(self.inspect_url())
        return super().post(request, *args, **kwargs)

    def form_valid(self, form):
        branches = form.cleaned_data.get("branches") or []
        if self.block is not None and not self.viewer.is_manager:
            # Staff change the reason; the branches a manager chose stay.
            branches = list(self.block.branches.all())
        booking_blocks.block(self.customer, reason=form.cleaned_data["reason"], branches=branches, user=self.request.user)
        messages.success(
            self.request, _("%(customer)s cannot book online any more, with any email or phone number of theirs.") % {
                "customer": self.customer
            }
        )
        return redirect(self.inspect_url())

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "customer": self.customer, "block": self.block, "inspect_url": self.inspect_url()}
