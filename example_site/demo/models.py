from wagtail.fields import RichTextField
from wagtail.models import Page
from wagtail.admin.panels import FieldPanel


class HomePage(Page):
    """The demo salon chain's home page: an introduction and a link to each branch's booking page."""

    intro = RichTextField(blank=True)

    content_panels = [*Page.content_panels, FieldPanel("intro")]
    subpage_types = ["wagtail_clientdb.BookingPage"]
    template = "demo/home_page.html"

    def booking_pages(self):
        return self.get_children().live().specific()
