"""The layout rules from the README, held by reading the imports: a rule that lives only in prose drifts."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CAPABILITIES = ("audit", "detection", "posture", "usage", "imports")
# The app's wiring: they mount every capability's pages, endpoints, jobs and commands, and nothing else. Django
# looks for commands in the app's management/commands/ only.
WIRING = {"inventory/urls.py", "inventory/api/urls.py", "inventory/tasks.py", "inventory/apps.py"}
WIRING_FOLDERS = ("inventory/management/",)
SHARED = "inventory.audit.record"  # writing an audit entry is every capability's business


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
    return names


def _capability(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "inventory" and parts[1] in CAPABILITIES else None


def _sources(folder: str):
    for path in sorted((ROOT / folder).rglob("*.py")):
        if "migrations" not in path.parts:
            yield path, path.relative_to(ROOT).as_posix()


def test_inventory_never_imports_approvals():
    offenders = [rel for path, rel in _sources("inventory") if any(m.startswith("approvals") for m in _imports(path))]
    assert offenders == []


def test_the_inventory_proper_imports_no_capability_but_the_audit_record():
    offenders = []
    for path, rel in _sources("inventory"):
        if _capability(rel.replace("/", ".")) or rel in WIRING or rel.startswith(WIRING_FOLDERS):
            continue
        for module in _imports(path):
            if _capability(module) and not module.startswith(SHARED):
                offenders.append((rel, module))
    assert offenders == []


def test_capabilities_use_only_the_inventory_proper_the_audit_record_and_posture_reads_detection():
    allowed = {"posture": {"detection"}}
    offenders = []
    for path, rel in _sources("inventory"):
        own = _capability(rel.replace("/", "."))
        if own is None:
            continue
        for module in _imports(path):
            other = _capability(module)
            if other and other != own and not module.startswith(SHARED) and other not in allowed.get(own, set()):
                offenders.append((rel, module))
    assert offenders == []


def test_nothing_imports_the_gateway_and_nhi_portal_imports_no_app_internals():
    """`operations` (health, metrics, logs, sign-in) and `home` (the role home pages) read the apps; the apps and
    the project never import them (the URLconf mounts them by name)."""
    offenders = []
    for folder in ("inventory", "approvals", "nhi_portal", "operations", "home"):
        for path, rel in _sources(folder):
            for module in _imports(path):
                if module.startswith("gateway"):
                    offenders.append((rel, module))
                mounted_only = module.split(".")[0] in ("operations", "home")
                if folder in ("inventory", "approvals", "nhi_portal") and mounted_only:
                    offenders.append((rel, module))
                if folder == "nhi_portal" and module.split(".")[0] in ("inventory", "approvals"):
                    offenders.append((rel, module))
    assert offenders == []


def test_the_gateway_imports_nothing_from_the_portal():
    """It runs on other hosts, with only the portal's HTTP API between them."""
    portal = ("inventory", "approvals", "nhi_portal", "django", "rest_framework", "tests")
    offenders = [
        (rel, module)
        for path, rel in _sources("gateway")
        for module in _imports(path)
        if module.split(".")[0] in portal
    ]
    assert offenders == []


def test_the_readme_layout_names_every_module():
    """A new module must be placed in the README's layout, where a stranger looks first."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("## Layout", 1)[1].split("```", 2)[1]
    missing = []
    for folder in ("nhi_portal", "inventory", "approvals", "gateway", "operations", "home"):
        for path, rel in _sources(folder):
            if path.name == "__init__.py" or "detectors" in path.parts:
                continue
            if path.stem not in block or path.parent.name not in block:
                missing.append(rel)
    assert missing == []
