"""Signals a project connects to, to keep customers in step elsewhere (a newsletter tool, a CRM).

Each is sent once the change is committed — never for a change that was rolled back — with
``sender`` the :class:`~wagtail_clientdb.models.Customer` class and these arguments:

``customer_created``
    ``customer_id``, ``source`` (``"manual"``, ``"import"``, ``"api"``, ``"online_booking"``…).
``customer_changed``
    ``customer_id``, ``changed_fields`` (field names; ``attributes.<key>`` for an attribute,
    ``groups``, ``tags``, ``sharing``, ``marketing_consent``), ``branch`` (the branch whose local
    values changed, or ``None`` for the customer's record), ``source``.
``customer_deleted``
    ``customer_id``, ``reason`` (``"deletion_request"`` or ``"merged"``; a merged customer
    lives on as ``merged_into``, its id, else ``None``).

Receivers read the customer again by its id (it may have changed since); a receiver that
fails is logged and does not undo the change. See ``docs/signals.md``.
"""

import logging

from django.db import transaction
from django.dispatch import Signal

logger = logging.getLogger(__name__)

customer_created = Signal()
customer_changed = Signal()
customer_deleted = Signal()


def send_after_commit(signal, customer_ids, **kwargs):
    """Send ``signal`` for each of ``customer_ids`` once the transaction commits."""
    from .models import Customer

    if not signal.has_listeners(Customer):
        return
    ids = list(customer_ids)

    def send():
        for customer_id in ids:
            for receiver, result in signal.send_robust(Customer, customer_id=customer_id, **kwargs):
                if isinstance(result, Exception):
                    logger.error("A receiver of %s failed: %r", receiver, result, exc_info=result)

    transaction.on_commit(send)
