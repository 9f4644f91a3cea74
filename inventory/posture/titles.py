"""Frameworks by the title people call them ("OWASP NHI Top 10 (2025)"), wherever one is picked or named in a tab, a
heading or an export. The catalog's `name` is the publication's full title, cited in the report; this is the short
form. A framework the list does not know reads as its full name."""

from inventory.models import Framework

SHORT_TITLES = {
    "OWASP-NHI-2025": "OWASP NHI Top 10 (2025)",
    "OWASP-LLM-Top10-2025": "OWASP LLM Top 10 (2025)",
    "OWASP-Agentic-Top10-2026": "OWASP Agentic Top 10 (2026)",
    "NIST-CSF-2.0": "NIST CSF 2.0",
    "NIST-SP-800-53r5": "NIST SP 800-53 Rev. 5",
    "NIST-SP-800-207": "NIST SP 800-207 Zero Trust",
    "ISO-IEC-27001-2022-AnnexA": "ISO/IEC 27001:2022 Annex A",
    "CIS-Controls-v8": "CIS Controls v8",
}


def framework_title(framework: Framework) -> str:
    return SHORT_TITLES.get(framework.key) or framework.name


def titled(frameworks) -> list[Framework]:
    """The frameworks with `.title` set, ordered by that title: a tab strip reads in the order people look for it."""
    rows = list(frameworks)
    for framework in rows:
        framework.title = framework_title(framework)
    return sorted(rows, key=lambda f: f.title.casefold())
