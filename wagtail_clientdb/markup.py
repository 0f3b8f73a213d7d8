"""Django's and Wagtail's admin markup for what a listing page repeats many times, written from
Python: the title cells and their buttons, the filters' options.

A customer listing page rendered Wagtail's templates twenty times over for its title cells —
the cell, the row's "More" dropdown, each button in it, each icon —: a quarter of the page's
processor time; and Django's templates two or three times per option of each filter. These
functions write what the templates render (the tests compare them: the filters' widgets byte for
byte, the cells element for element, whitespace between elements aside); a button of another
kind, with a template or context of its own (a hook's), is still rendered by its template.
"""

from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from wagtail.admin.templatetags.wagtailadmin_tags import classnames
from wagtail.admin.widgets.button import BaseButton, BaseDropdownMenuButton


def html_attrs(attrs):
    """The attributes as Django's ``attrs.html`` and Wagtail's ``shared/attrs.html`` write
    them: ``True`` bare, ``False`` left out."""
    return format_html_join(
        "", " {}{}", ((name, "" if value is True else format_html('="{}"', value)) for name, value in attrs.items() if value is not False)
    )


def icon_html(name, classname="icon"):
    return format_html('<svg class="icon icon-{} {}" aria-hidden="true"><use href="#icon-{}"></use></svg>', name, classname, name)


def status_html(label, classname=""):
    """A status tag (``{% status %}`` without a link)."""
    return format_html('<span class="{}">{}</span>', classnames("w-status", classname), label)


def _renders_as(button, kind):
    """Whether ``button`` renders exactly as ``kind`` does: same template, same context."""
    cls = type(button)
    return (
        button.template_name == kind.template_name
        and cls.get_context_data is kind.get_context_data
        and cls.render_html is kind.render_html
    )


def button_html(button, parent_context):
    """A button as ``{% component button %}`` renders it."""
    if isinstance(button, BaseDropdownMenuButton):
        return dropdown_html(button, parent_context)
    if not _renders_as(button, BaseButton):
        return button.render_html(parent_context)
    content = format_html("{} {}", icon_html(button.icon_name), button.label) if button.icon_name else format_html("{}", button.label)
    if button.url:
        return format_html('<a href="{}" class="{}"{}>{}</a>', button.url, button.classname, button.base_attrs_string, content)
    return format_html('<button class="{}"{}>{}</button>', button.classname, button.base_attrs_string, content)


def dropdown_html(button, parent_context):
    """A button with a dropdown (Wagtail's ``button_with_dropdown.html`` and ``dropdown.html``)."""
    if not _renders_as(button, BaseDropdownMenuButton):
        return button.render_html(parent_context)
    context = button.get_context_data(parent_context)
    label, aria_label = context["label"], context["title"]
    toggle_class = classnames("w-dropdown__toggle", "" if label else "w-dropdown__toggle--icon", context["toggle_classname"])
    return format_html(
        '<div data-controller="w-dropdown" class="w-dropdown"{}>'
        '<button type="button" class="{}" data-w-dropdown-target="toggle"{}>{} {}</button>'
        '<div data-w-dropdown-target="content" class="w-dropdown__content" hidden>{}</div>'
        "</div>",
        button.base_attrs_string,
        toggle_class,
        format_html(' aria-label="{}"', aria_label) if aria_label else "",
        label,
        icon_html(context["icon_name"] or "arrow-down", "w-dropdown__toggle-icon"),
        mark_safe("".join(button_html(item, context) for item in context["buttons"])),
    )


def buttons_html(buttons, parent_context):
    """Wagtail's ``shared/buttons.html``: the buttons shown, each in a list item."""
    return format_html_join("", "<li>{}</li>", ((button_html(button, parent_context),) for button in buttons if button.show))


def title_cell_html(column, context, extra_title=""):
    """Wagtail's ``tables/title_cell.html`` for a title column's cell ``context`` (its buttons
    rendered in it); ``extra_title`` follows the title (as a template's ``{% block title %}``
    adding to ``block.super``)."""
    value, title_id = context["value"], context["title_id"]
    title = format_html('<span id="{}">{}</span>', title_id, value) if title_id else format_html("{}", value)
    if context["link_url"]:
        title = format_html("<a{}>{}</a>", html_attrs(context["link_attrs"]), title)
    elif context["label_id"]:
        title = format_html('<label for="{}">{}</label>', context["label_id"], title)
    buttons = context.get("buttons")
    actions = format_html('<ul class="actions">{}</ul>', buttons_html(buttons, context)) if buttons else ""
    return format_html(
        '<td class="{}title"><div class="title-wrapper">{} {}</div>{}</td>\n',
        f"{column.classname} " if column.classname else "",
        title,
        extra_title,
        actions,
    )


def input_html(widget):
    """Django's ``input.html`` for a widget's (or an option's) context."""
    value = "" if widget["value"] is None else format_html(' value="{}"', widget["value"])
    return format_html('<input type="{}" name="{}"{}{}>', widget["type"], widget["name"], value, html_attrs(widget["attrs"]))


def option_input_html(option):
    """Django's ``checkbox_option.html`` or ``radio_option.html``: a checkbox or radio button in
    its label, with the line ends of the templates included in each other."""
    field = format_html("{}\n", input_html(option))
    if option["wrap_label"]:
        label_for = format_html(' for="{}"', option["attrs"]["id"]) if option["attrs"].get("id") else ""
        field = format_html("<label{}>{} {}</label>", label_for, field, option["label"])
    return format_html("{}\n\n", field)


def multiple_input_html(widget):
    """Django's ``multiple_input.html`` (checkboxes, radio buttons) for a widget's context."""
    parts = []
    for group_name, options, _index in widget["optgroups"]:
        inputs = format_html_join("", "<div>\n    {}</div>", ((option_input_html(option),) for option in options))
        parts.append(format_html("\n  <div><label>{}</label>{}\n  </div>", group_name, inputs) if group_name else inputs)
    attrs = widget["attrs"]
    return format_html(
        "<div{}{}>{}\n</div>",
        format_html(' id="{}"', attrs["id"]) if attrs.get("id") else "",
        format_html(' class="{}"', attrs["class"]) if attrs.get("class") else "",
        mark_safe("".join(parts)),
    )


def select_html(widget):
    """Django's ``select.html`` and ``select_option.html`` for a widget's context."""
    parts = []
    for group_name, options, _index in widget["optgroups"]:
        if group_name:
            parts.append(format_html('\n  <optgroup label="{}">', group_name))
        parts.extend(
            format_html('\n  <option value="{}"{}>{}</option>\n', option["value"], html_attrs(option["attrs"]), option["label"])
            for option in options
        )
        if group_name:
            parts.append("\n  </optgroup>")
    return format_html('<select name="{}"{}>{}\n</select>', widget["name"], html_attrs(widget["attrs"]), mark_safe("".join(parts)))
