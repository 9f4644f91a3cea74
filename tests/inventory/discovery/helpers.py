"""Fixture files (written from the providers' documented formats) and how the tests send them."""

from pathlib import Path

from inventory.models import AuditEntry, Credential, FactChange, ScopeGrant, ServiceIdentity, SourceObject, SourceRun

FIXTURES = Path(__file__).with_name("fixtures")
HOME_TENANT = "11111111-2222-3333-4444-555555555555"
# The token inside the Kubernetes fixture's secrets (base64 there): it must never be stored anywhere.
K8S_TOKEN = "eyJhbGciOiJSUzI1NiIsImtpZCI6InRlc3QifQ.k8s-legacy-token-value-SECRET-xyz9"


def fixture(kind: str, variant: str = "") -> bytes:
    suffix = ".csv" if kind.startswith("aws") else ".json"
    return (FIXTURES / f"{kind}{'-' + variant if variant else ''}{suffix}").read_bytes()


def url(kind: str, **params) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"/api/v1/sources/{kind}/import/" + (f"?{query}" if query else "")


def post(client, kind: str, body: bytes, **params):
    return client.post(url(kind, **params), data=body, content_type="application/octet-stream")


def state() -> dict[str, object]:
    """Everything an import may write, to show that something wrote nothing."""
    return {
        "identities": list(ServiceIdentity.objects.order_by("pk").values()),
        "credentials": list(Credential.objects.order_by("pk").values()),
        "sources": list(SourceObject.objects.order_by("pk").values()),
        "runs": SourceRun.objects.count(),
        "audit": AuditEntry.objects.count(),
        "grants": ScopeGrant.objects.count(),
        "held": FactChange.objects.count(),
    }
