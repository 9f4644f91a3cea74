from django.db import models


class RequestStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    DENIED = "denied", "Denied"
    CANCELLED = "cancelled", "Cancelled"
    EXPIRED = "expired", "Expired"


class DecisionKind(models.TextChoices):
    APPROVE = "approve", "Approved"
    DENY = "deny", "Denied"
