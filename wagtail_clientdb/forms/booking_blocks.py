from django import forms
from django.utils.translation import gettext_lazy as _

from ..models import Branch


class BookingBlockForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"),
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("For your colleagues; never shown to the customer."),
    )
    branches = forms.ModelMultipleChoiceField(
        label=_("Only in these branches"),
        queryset=Branch.objects.order_by("name"),
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text=_("Leave all unticked to block online booking in every branch."),
    )

    def __init__(self, *args, may_choose_branches=False, **kwargs):
        super().__init__(*args, **kwargs)
        # A block applies in every branch unless a manager says otherwise.
        if not may_choose_branches:
            del self.fields["branches"]
