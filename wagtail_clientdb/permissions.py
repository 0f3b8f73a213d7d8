"""Permission policies that add the branch rules of :mod:`wagtail_clientdb.scope` to Django's
model permissions.

Wagtail's generic admin views check permissions per model only; our views and bulk
actions scope objects themselves (see :mod:`wagtail_clientdb.views.scoping`). These
policies make the same rules hold wherever Wagtail itself asks for instance permissions
(delete buttons, bulk actions, the v3 API).
"""

from wagtail.permission_policies import ModelPermissionPolicy
from wagtail.permissions import register_permission_policy

from . import scope


class CustomerPermissionPolicy(ModelPermissionPolicy):
    def instances_user_has_any_permission_for(self, user, actions):
        if not self.user_has_any_permission(user, actions):
            return self.model._default_manager.none()
        return scope.visible_customers(scope.viewer_for_user(user))

    def user_has_permission_for_instance(self, user, action, instance):
        if not self.user_has_permission(user, action):
            return False
        viewer = scope.viewer_for_user(user)
        if not scope.is_visible(viewer, instance):
            return False
        if viewer.is_manager:
            return True
        per_branch = [scope.Viewer(user, False, (branch,)) for branch in viewer.branches]
        per_branch = [v for v in per_branch if scope.is_visible(v, instance)]
        if action == "change":
            return any(scope.edit_mode(v, instance) != scope.EditMode.READ_ONLY for v in per_branch)
        if action == "delete":
            return any(scope.can_delete(v, instance) for v in per_branch)
        return True


class AppointmentPermissionPolicy(ModelPermissionPolicy):
    def instances_user_has_any_permission_for(self, user, actions):
        if not self.user_has_any_permission(user, actions):
            return self.model._default_manager.none()
        return scope.visible_appointments(scope.viewer_for_user(user))

    def user_has_permission_for_instance(self, user, action, instance):
        return (
            self.user_has_permission(user, action)
            and scope.visible_appointments(scope.viewer_for_user(user)).filter(pk=instance.pk).exists()
        )


class BranchPermissionPolicy(ModelPermissionPolicy):
    def instances_user_has_any_permission_for(self, user, actions):
        if not self.user_has_any_permission(user, actions):
            return self.model._default_manager.none()
        return scope.visible_branches(scope.viewer_for_user(user))

    def user_has_permission_for_instance(self, user, action, instance):
        return (
            self.user_has_permission(user, action)
            and scope.visible_branches(scope.viewer_for_user(user)).filter(pk=instance.pk).exists()
        )


class DeletionRequestPermissionPolicy(ModelPermissionPolicy):
    """Requests are made by deleting customers and changed only by the queue's own actions."""

    def user_has_permission(self, user, action):
        return action not in ("add", "change", "delete") and super().user_has_permission(user, action)


def register_permission_policies():
    from .models import Appointment, Branch, Customer, DeletionRequest

    register_permission_policy(Customer, CustomerPermissionPolicy(Customer))
    register_permission_policy(Appointment, AppointmentPermissionPolicy(Appointment))
    register_permission_policy(Branch, BranchPermissionPolicy(Branch))
    register_permission_policy(DeletionRequest, DeletionRequestPermissionPolicy(DeletionRequest))
