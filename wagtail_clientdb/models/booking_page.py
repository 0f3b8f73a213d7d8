from django import forms
from django.db import models
from django.utils.translation import gettext_lazy as _
from wagtail.admin.panels import FieldPanel
from wagtail.contrib.routable_page.models import RoutablePageMixin, path
from wagtail.fields import RichTextField
from wagtail.models import Page


class BookingPage(RoutablePageMixin, Page):
    """The public booking page of one branch: a visitor picks a service and a free time and
    books it; a first booking creates the customer (:mod:`wagtail_clientdb.public_booking`)."""

    branch = models.ForeignKey(
        "wagtail_clientdb.Branch",
        verbose_name=_("branch"),
        on_delete=models.PROTECT,
        related_name="booking_pages",
        help_text=_("The branch whose services and free times this page offers."),
    )
    intro = RichTextField(_("introduction"), blank=True)
    confirmation_text = RichTextField(
        _("confirmation text"), blank=True, help_text=_("Shown after a booking, e.g. how to find the branch.")
    )

    content_panels = [
        *Page.content_panels,
        FieldPanel("branch", widget=forms.Select),
        FieldPanel("intro"),
        FieldPanel("confirmation_text"),
    ]
    subpage_types = []

    wagtail_reference_index_ignore = True

    class Meta:
        verbose_name = _("booking page")
        verbose_name_plural = _("booking pages")

    @path("")
    def book(self, request):
        from ..public_booking import booking_view

        return booking_view(self, request)

    @path("booked/<str:token>/")
    def booked(self, request, token):
        from ..public_booking import booked_view

        return booked_view(self, request, token)

    @path("cancel/<str:token>/")
    def cancel(self, request, token):
        from ..public_booking import cancel_view

        return cancel_view(self, request, token)
