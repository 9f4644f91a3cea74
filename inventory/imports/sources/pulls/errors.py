"""What a failed pull says: a message fit for logs and the audit trail, never a credential or a provider's body."""

from nhi_portal.exceptions import PortalError


class PullFailed(PortalError):
    """The provider could not be read; nothing was imported. The message names the cause, not a secret."""
