from wagtail.admin.forms import WagtailAdminModelForm

from .. import scope


class ServiceForm(WagtailAdminModelForm):
    """The branches that offer a service, among those the editor works in: a branch user
    neither sees nor removes the other branches offering it."""

    def __init__(self, *args, viewer=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.other_branches = []
        if viewer is not None:
            visible = scope.visible_branches(viewer)
            self.fields["branches"].queryset = visible.order_by("name")
            if self.instance.pk:
                self.other_branches = list(self.instance.branches.exclude(pk__in=visible))

    def _save_m2m(self):
        super()._save_m2m()
        self.instance.branches.add(*self.other_branches)
