"""The listing markup written from Python (:mod:`wagtail_clientdb.markup`) is what Wagtail's
templates render: the same elements, attributes and text (whitespace between elements aside),
for every kind of button Wagtail makes and for the customer listing's title cells as each
role sees them; a button with a template of its own is still rendered by it."""

import re

import pytest
from django.template import Context, Template
from django.test import RequestFactory
from django.test.html import parse_html
from django.urls import reverse
from wagtail import hooks
from wagtail.admin.widgets.button import Button, ButtonWithDropdown, HeaderButton, ListingButton

from tests.conftest import make_appointment, make_customer
from wagtail_clientdb import archive, deletion, markup, scope

LIST_URL = reverse("wagtailsnippets_wagtail_clientdb_customer:list")

#: The customer name cell as a template (what the listing rendered before it was written in Python).
NAME_CELL_TEMPLATE = """{% extends "wagtailadmin/tables/title_cell.html" %}
{% load i18n wagtailadmin_tags %}
{% block title %}
    {{ block.super }}
    {% if instance.home_branch_id is None %}{% status _("global") classname="w-status--primary clientdb-badge" %}{% endif %}
    {% if instance.archived_at %}{% trans "archived" as archived %}{% status archived classname="clientdb-badge" %}{% endif %}
    {% if instance.is_pending_deletion %}{% trans "pending deletion" as pending %}{% status pending classname="clientdb-badge" %}{% endif %}
{% endblock %}"""


def rendered_by_template(button):
    request = RequestFactory().get("/")
    return Template("{% load wagtailadmin_tags %}{% component button %}").render(Context({"button": button, "request": request}))


def same_html(first, second):
    return parse_html(str(first)) == parse_html(str(second))


class OwnTemplateButton(Button):
    template_name = "wagtailadmin/shared/icon.html"

    def get_context_data(self, parent_context):
        return {"name": "warning", "classname": "own-template"}


BUTTONS = {
    "link with an icon": Button("Edit", url="/edit/1/?next=/a&b", icon_name="edit", priority=10),
    "link without an icon": Button("History", url="/history/1/"),
    "no link: a button element": Button("Copy", icon_name="copy", attrs={"data-action": "copy"}),
    "attributes and a label to escape": Button(
        "<Delete> 'O'Brien'", url="/delete/1/", icon_name="bin", attrs={"aria-label": "Delete 'O'Brien' & co", "disabled": True}
    ),
    "a listing button": ListingButton("Inspect", url="/inspect/1/", icon_name="info-circle", classname="extra"),
    "a header button": HeaderButton("Add", url="/add/", icon_name="plus", icon_only=True),
}


@pytest.mark.parametrize("name", BUTTONS)
def test_a_button_is_written_as_its_template_renders_it(name):
    button = BUTTONS[name]
    assert same_html(markup.button_html(button, {}), rendered_by_template(button))


@pytest.mark.parametrize(
    "dropdown",
    [
        ButtonWithDropdown(buttons=list(BUTTONS.values()), icon_name="dots-horizontal", attrs={"aria-label": "More options for 'O'Brien'"}),
        ButtonWithDropdown("Export", buttons=[BUTTONS["link with an icon"]], classname="button-secondary"),
        ButtonWithDropdown(buttons=[OwnTemplateButton("Own", url="/own/"), BUTTONS["link without an icon"]]),
    ],
    ids=["icon only, every kind of button", "with a label, the default icon", "a button with its own template inside"],
)
def test_a_dropdown_is_written_as_its_templates_render_it(dropdown):
    assert same_html(markup.dropdown_html(dropdown, {}), rendered_by_template(dropdown))


def test_a_button_with_its_own_template_is_rendered_by_it():
    button = OwnTemplateButton("Own", url="/own/")
    written = markup.buttons_html([button, Button("Hidden", url="/hidden/")], {})
    assert "own-template" in written
    assert same_html(written, f"<li>{rendered_by_template(button)}</li><li>{rendered_by_template(Button('Hidden', url='/hidden/'))}</li>")


def test_buttons_not_shown_are_left_out():
    hidden = Button("Hidden", url="/hidden/")
    hidden.show = False
    assert markup.buttons_html([hidden], {}) == ""


def name_cells(html):
    return re.findall(r'<td class="clientdb-name title">.*?</td>', html, re.S)


@pytest.fixture
def listed_customers(branch_a, branch_b, manager, allow_branch_edits):
    customers = {
        "global": make_customer(first_name="Gloria", last_name="O'Global", shared_with_all_branches=True),
        "shared with a": make_customer(first_name="Gerd", last_name="<Specifica>", branches=[branch_a]),
        "local to a": make_customer(first_name="Lena", last_name="Locala", home_branch=branch_a),
        "archived": make_customer(first_name="Arne", last_name="Archived", home_branch=branch_a),
        "pending deletion": make_customer(first_name="Paula", last_name="Pending", shared_with_all_branches=True),
        "local to b": make_customer(first_name="Lars", last_name="Localb", home_branch=branch_b),
    }
    viewer = scope.Viewer(manager, True)
    archive.archive(viewer, [customers["archived"]])
    make_appointment(customers["pending deletion"], branch_a)  # blocks the deletion: it stays pending
    deletion.request_deletion(viewer, customers["pending deletion"])
    return customers


@pytest.mark.parametrize("role", ["manager", "staff_a"])
def test_the_customer_listing_title_cells_are_what_the_templates_render(role, request, login, listed_customers):
    client = login(request.getfixturevalue(role))
    response = client.get(LIST_URL, {"archived": "any"})
    assert response.status_code == 200
    table = response.context["table"]
    column = table.columns["name"]
    cells = name_cells(response.content.decode())
    assert len(cells) == len(table.data) >= 5
    reference = Template(NAME_CELL_TEMPLATE)
    for row, instance, cell in zip(table.rows, table.data, cells):
        parent_context = {"request": response.wsgi_request, "table": table, "row": row}
        expected = reference.render(Context(column.get_cell_context_data(instance, parent_context)))
        assert same_html(cell, expected), f"{instance}: {cell}\n\n{expected}"
    html = "".join(cells)
    assert "archived</span>" in html and "pending deletion</span>" in html and "global</span>" in html
    assert "&lt;Specifica&gt;" in html and "O&#x27;Global" in html


def test_a_listing_button_added_by_a_hook_is_rendered_by_its_template(login, manager, listed_customers):
    def own_button(snippet, user, next_url=None):
        return [OwnTemplateButton("Own", url=f"/own/{snippet.pk}/")]

    with hooks.register_temporarily("register_snippet_listing_buttons", own_button):
        html = login(manager).get(LIST_URL).content.decode()
    assert all("own-template" in cell for cell in name_cells(html))
