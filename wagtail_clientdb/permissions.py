"""Permission policies that add the branch rules of :mod:`wagtail_clientdb.scope` to Django's
model permissions.

Wagtail's generic admin views check permissions per model only; the app's viewsets scope
every object URL, chooser and bulk action (see :mod:`wagtail_clientdb.views.scoping`). These
policies make the same rules hold wherever Wagtail itself asks for the objects a user may
reach: delete buttons, log entries (site history), the v3 API. A policy acts for the user
through all of the user's branches; the admin narrows that to the current branch.
"""

from wagtail.permission_policies import ModelPermissionPolicy
from wagtail.permissions import policy_registry, register_permission_policy

from . import scope

#: Any of the model permissions: what a user needs to reach an object at all.
ANY_ACTION = ("add", "change", "delete", "view")


class ScopedPermissionPolicy(ModelPermissionPolicy):
    """Model permissions, on the objects ``visible(viewer)`` returns."""

    def __init__(self, model, visible):
        super().__init__(model)
        self.visible = visible

    def instances_user_has_any_permission_for(self, user, actions):
        if not self.user_has_any_permission(user, actions):
            return self.model._default_manager.none()
        return self.visible(scope.viewer_for_user(user))

    def user_has_permission_for_instance(self, user, action, instance):
        return (
            self.user_has_permission(user, action)
            and self.visible(scope.viewer_for_user(user)).filter(pk=instance.pk).exists()
        )

    def instances_user_may(self, user, action, instances):
        """Those of ``instances`` for which :meth:`user_has_permission_for_instance` holds: asked
        in one query where that rule is the scope alone (a bulk action's 500 appointments asked
        one by one took 500 queries)."""
        if type(self).user_has_permission_for_instance is not ScopedPermissionPolicy.user_has_permission_for_instance:
            return [instance for instance in instances if self.user_has_permission_for_instance(user, action, instance)]
        if not instances or not self.user_has_permission(user, action):
            return []
        pks = [instance.pk for instance in instances]
        reachable = set(self.visible(scope.viewer_for_user(user)).filter(pk__in=pks).values_list("pk", flat=True))
        return [instance for instance in instances if instance.pk in reachable]


class CustomerPermissionPolicy(ScopedPermissionPolicy):
    """Visible customers; changed and deleted as :func:`scope.edit_mode` and :func:`scope.can_delete` allow."""

    def __init__(self, model):
        super().__init__(model, scope.visible_customers)

    def user_has_permission_for_instance(self, user, action, instance):
        if not super().user_has_permission_for_instance(user, action, instance):
            return False
        viewer = scope.viewer_for_user(user)
        if viewer.is_manager:
            return True
        per_branch = [scope.Viewer(user, False, (branch,)) for branch in viewer.branches]
        per_branch = [v for v in per_branch if scope.is_visible(v, instance)]
        if action == "change":
            return any(scope.edit_mode(v, instance) != scope.EditMode.READ_ONLY for v in per_branch)
        if action == "delete":
            return any(scope.can_delete(v, instance) for v in per_branch)
        return True


class DeletionRequestPermissionPolicy(ScopedPermissionPolicy):
    """Requests are made by deleting customers and changed only by the queue's own actions."""

    def __init__(self, model):
        super().__init__(model, scope.visible_deletion_requests)

    def user_has_permission(self, user, action):
        return action not in ("add", "change", "delete") and super().user_has_permission(user, action)


class SeenThroughCustomersPolicy(ScopedPermissionPolicy):
    """Objects with no permissions of their own: whoever may reach customers may see those of
    them that ``visible`` gives; nobody adds, changes or deletes them in Wagtail's views."""

    @property
    def customers(self):
        from .models import Customer

        return ModelPermissionPolicy(Customer)

    def user_has_permission(self, user, action):
        return action == "view" and self.customers.user_has_any_permission(user, ANY_ACTION)

    def users_with_any_permission(self, actions):
        if "view" not in actions:
            return self.customers.users_with_any_permission([]).none()
        return self.customers.users_with_any_permission(ANY_ACTION)


class DuplicatePairPermissionPolicy(SeenThroughCustomersPolicy):
    """Possible duplicates: the pairs of customers the user sees (the scan finds them); "not a
    duplicate" asks for the permission to change customers."""

    def __init__(self, model):
        from . import duplicates

        super().__init__(model, duplicates.visible_pairs)

    def may_dismiss(self, user):
        return self.customers.user_has_permission(user, "change")


class SegmentPermissionPolicy(ScopedPermissionPolicy):
    """Segments have no permissions of their own: whoever may reach customers may save segments
    and use those shared with them (:func:`segments.visible_segments`), each in their own scope.
    Changed and deleted by their owner, and the shared ones by managers (:func:`segments.may_change`)."""

    def __init__(self, model):
        from . import segments

        super().__init__(model, segments.visible_segments)

    @property
    def customers(self):
        from .models import Customer

        return ModelPermissionPolicy(Customer)

    def user_has_permission(self, user, action):
        return self.customers.user_has_any_permission(user, ANY_ACTION)

    def users_with_any_permission(self, actions):
        return self.customers.users_with_any_permission(ANY_ACTION)

    def user_has_permission_for_instance(self, user, action, instance):
        from . import segments

        if not super().user_has_permission_for_instance(user, action, instance):
            return False
        return action not in ("change", "delete") or segments.may_change(scope.viewer_for_user(user), instance)


def register_permission_policies():
    """Once, before anything asks Wagtail for a policy of these models (it then makes a fallback
    policy that no later registration may replace): from the app's ``ready()`` or, where
    ``wagtail.snippets`` comes first in ``INSTALLED_APPS`` and reads the app's hooks before it,
    from the top of ``wagtail_hooks.py``."""
    from .models import Appointment, Branch, Customer, DeletionRequest, DuplicatePair, ExportJob, ImportJob, Segment

    if isinstance(policy_registry.get_by_type(Customer, fallback=False), CustomerPermissionPolicy):
        return

    register_permission_policy(Customer, CustomerPermissionPolicy(Customer))
    register_permission_policy(Appointment, ScopedPermissionPolicy(Appointment, scope.visible_appointments))
    register_permission_policy(Branch, ScopedPermissionPolicy(Branch, scope.visible_branches))
    register_permission_policy(DeletionRequest, DeletionRequestPermissionPolicy(DeletionRequest))
    register_permission_policy(DuplicatePair, DuplicatePairPermissionPolicy(DuplicatePair))
    # Imports and exports, as the history shows them (who ran them, with which filters, how many).
    for job_model in (ImportJob, ExportJob):
        register_permission_policy(
            job_model, SeenThroughCustomersPolicy(job_model, lambda viewer, model=job_model: scope.visible_jobs(viewer, model))
        )
    register_permission_policy(Segment, SegmentPermissionPolicy(Segment))
