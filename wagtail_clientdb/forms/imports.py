from django import forms
from django.utils.translation import gettext_lazy as _

from .. import scope
from ..imports import columns
from ..imports.reading import ENCODINGS
from ..models import Branch

ENCODING_CHOICES = [("", _("Detect automatically"))] + [
    (name, label)
    for name, label in zip(
        ENCODINGS,
        [_("UTF-8"), _("UTF-8 with BOM (Excel “CSV UTF-8”)"), _("UTF-16 (Excel “Unicode text”)"), _("Windows-1252 (Excel “CSV”)")],
    )
]
DELIMITER_CHOICES = [("", _("Detect automatically")), (",", _("Comma")), (";", _("Semicolon")), ("\t", _("Tab"))]


class UploadForm(forms.Form):
    file = forms.FileField(
        label=_("Customer list"),
        help_text=_(
            "CSV, XLSX or XLS. Without a header row, columns are read as: A name, B phone, C email, "
            "D notes, E marketing consent (yes/1 gives it, no/0 withdraws it, empty changes nothing for "
            "an existing customer and means no consent for a new one)."
        ),
    )
    encoding = forms.ChoiceField(label=_("Encoding (CSV only)"), choices=ENCODING_CHOICES, required=False)
    delimiter = forms.ChoiceField(label=_("Columns separated by (CSV only)"), choices=DELIMITER_CHOICES, required=False)


class MappingForm(forms.Form):
    """One choice per column of the file: which customer field it feeds."""

    def __init__(self, *args, job, sample_rows, is_manager, **kwargs):
        super().__init__(*args, **kwargs)
        choices = columns.target_choices()
        if not is_manager:
            choices = [choice for choice in choices if choice[0] != columns.BRANCHES]
        self.column_fields = []
        for index, header in enumerate(job.headers):
            name = f"column_{index}"
            examples = [str(row[index]) for row in sample_rows if index < len(row) and row[index] not in (None, "")][:3]
            self.fields[name] = forms.ChoiceField(
                label=header, choices=choices, required=False, initial=job.targets[index] if index < len(job.targets) else ""
            )
            self.column_fields.append((self[name], examples))
        self.job = job

    def clean(self):
        cleaned = super().clean()
        targets = [cleaned.get(f"column_{index}", "") for index in range(len(self.job.headers))]
        for problem in columns.mapping_problems(targets, self.job.headers):
            self.add_error(None, problem)
        cleaned["targets"] = targets
        return cleaned


class ConfirmForm(forms.Form):
    import_valid_rows = forms.BooleanField(
        label=_("Import the valid rows and report the rest"),
        required=False,
        help_text=_("Without this, one refused row stops the whole import: nothing is written."),
    )
    # Chosen, not defaulted: "specific branches" with none ticked would make customers no
    # branch sees.
    sharing = forms.ChoiceField(
        label=_("Share new customers with"),
        choices=[("specific", _("Specific branches")), ("all", _("All branches (final)"))],
        widget=forms.RadioSelect,
        help_text=_("Rows with a Branches column use that instead."),
    )
    share_branches = forms.ModelMultipleChoiceField(
        label=_("Branches"), queryset=Branch.objects.order_by("name"), widget=forms.CheckboxSelectMultiple, required=False
    )

    def __init__(self, *args, is_manager, new=1, refused=0, retry=False, **kwargs):
        """``new``: how many new customers the preview found; without any, there is no sharing
        to choose (a row that is new only at the import is refused, as a change made after the
        preview is)."""
        super().__init__(*args, **kwargs)
        if not is_manager or retry or not new:
            # A retry after a refusal keeps the sharing chosen the first time.
            del self.fields["sharing"]
            del self.fields["share_branches"]
        if refused or retry:
            # The preview already refused rows: "all or nothing" could only be refused again,
            # so the choice is not offered; the page says what importing now leaves out.
            del self.fields["import_valid_rows"]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("sharing"):
            try:
                scope.require_a_branch(
                    all_branches=cleaned["sharing"] == "all", branches=cleaned.get("share_branches"), count=2
                )
            except forms.ValidationError as error:
                self.add_error("share_branches", error)
        return cleaned
