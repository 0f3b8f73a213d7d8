"""The bulk actions a listing's footer offers: those the viewer may use.

Wagtail's footer (``{% bulk_action_choices %}``) lists every registered action to every user;
an action the viewer may never use is then refused on its confirmation page ("Share with
branches" for branch staff). This footer asks each action's ``is_shown(request)`` first,
and lays the buttons out as Wagtail's does: the first four, the rest under "More"::

    {% load clientdb_bulk_actions %}
    {% bulk_actions_for_viewer app_label model_name %}

and counts a selection of customers in their own words, not as "snippets"
(``static/wagtail_clientdb/js/bulk_action_strings.js``)::

    {% customer_selection_strings as strings %}{{ strings|json_script:"clientdb-bulk-action-strings" }}
"""

from django import template
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from wagtail.admin.views.bulk_action.registry import bulk_action_registry
from wagtail.admin.widgets import Button, ButtonWithDropdown
from wagtail.admin.widgets.button import ListingButton

register = template.Library()

#: How many buttons the footer shows before "More" (as Wagtail's footer).
SHOWN_BUTTONS = 4


def actions_for(request, app_label, model_name):
    """The bulk actions of a model that ``request``'s user is offered, in their order."""
    actions = bulk_action_registry.get_bulk_actions_for_model(app_label, model_name)
    shown = [action for action in actions if getattr(action, "is_shown", lambda request: True)(request)]
    return sorted(shown, key=lambda action: action.action_priority)


@register.inclusion_tag("wagtailadmin/shared/buttons.html", takes_context=True)
def bulk_actions_for_viewer(context, app_label, model_name):
    actions = actions_for(context["request"], app_label, model_name)

    def url(action):
        # No "next": Wagtail's script adds the listing's current URL when a button is used.
        return reverse("wagtail_bulk_action", args=[app_label, model_name, action.action_type])

    buttons = [
        ListingButton(
            action.display_name,
            url(action),
            attrs={"aria-label": action.aria_label, "data-bulk-action-button": ""},
            priority=action.action_priority,
            classname=" ".join(action.classes | {"bulk-action-btn"}),
        )
        for action in actions[:SHOWN_BUTTONS]
    ]
    if more := actions[SHOWN_BUTTONS:]:
        buttons.append(
            ButtonWithDropdown(
                label=_("More"),
                attrs={"title": _("More bulk actions")},
                classname="button button-secondary button-small",
                buttons=[
                    Button(
                        label=action.display_name,
                        url=url(action),
                        attrs={"aria-label": action.aria_label, "data-bulk-action-button": ""},
                        priority=action.action_priority,
                    )
                    for action in more
                ],
            )
        )
    return {"buttons": buttons}


@register.simple_tag
def customer_selection_strings():
    """The footer's count of a selection, in the keys of Wagtail's ``BULK_ACTIONS`` strings."""
    return {
        "SINGULAR": gettext("1 customer selected"),
        "PLURAL": gettext("%(objects)s customers selected"),
        "ALL": gettext("All %(objects)s customers on this screen selected"),
        "ALL_IN_LISTING": gettext("All customers in listing selected"),
    }
