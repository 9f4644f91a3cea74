from .gateways import GatewayToolLimit
from .policy import PolicySettings
from .requests import AccessRequest, Decision, GrantIssue, RequestedScope

__all__ = ["AccessRequest", "Decision", "GatewayToolLimit", "GrantIssue", "PolicySettings", "RequestedScope"]
