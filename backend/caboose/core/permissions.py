"""The permission matrix: what each workspace role may do. The only place roles are interpreted.

docs/security.md shows this table to operators; ``tests/unit/test_permissions.py`` checks that the
two agree, so they cannot drift.
"""

from __future__ import annotations

from enum import StrEnum

from caboose.models.enums import Role


class Permission(StrEnum):
    # Workspace
    WORKSPACE_READ = "workspace:read"
    WORKSPACE_UPDATE = "workspace:update"
    WORKSPACE_DELETE = "workspace:delete"
    MEMBERS_READ = "members:read"
    MEMBERS_MANAGE = "members:manage"
    OWNERSHIP_MANAGE = "ownership:manage"
    # Projects, environments, services
    PROJECT_READ = "project:read"
    PROJECT_MANAGE = "project:manage"
    SERVICE_MANAGE = "service:manage"
    # Deployments
    DEPLOY = "deploy"
    LOGS_READ = "logs:read"
    # Configuration
    VARIABLES_READ_NAMES = "variables:read-names"
    VARIABLES_READ_VALUES = "variables:read-values"
    VARIABLES_WRITE = "variables:write"
    DOMAINS_MANAGE = "domains:manage"
    WEBHOOKS_MANAGE = "webhooks:manage"


_MEMBER = frozenset(
    {
        Permission.WORKSPACE_READ,
        Permission.MEMBERS_READ,
        Permission.PROJECT_READ,
        Permission.DEPLOY,
        Permission.LOGS_READ,
        Permission.VARIABLES_READ_NAMES,
    }
)
_ADMIN = _MEMBER | {
    Permission.WORKSPACE_UPDATE,
    Permission.MEMBERS_MANAGE,
    Permission.PROJECT_MANAGE,
    Permission.SERVICE_MANAGE,
    Permission.VARIABLES_READ_VALUES,
    Permission.VARIABLES_WRITE,
    Permission.DOMAINS_MANAGE,
    Permission.WEBHOOKS_MANAGE,
}
_OWNER = _ADMIN | {Permission.WORKSPACE_DELETE, Permission.OWNERSHIP_MANAGE}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.MEMBER: _MEMBER,
    Role.ADMIN: frozenset(_ADMIN),
    Role.OWNER: frozenset(_OWNER),
}

# What each permission covers, in words (docs/security.md and the dashboard's tooltips).
PERMISSION_DESCRIPTIONS: dict[Permission, str] = {
    Permission.WORKSPACE_READ: "see the workspace",
    Permission.WORKSPACE_UPDATE: "rename the workspace",
    Permission.WORKSPACE_DELETE: "delete the workspace and everything in it",
    Permission.MEMBERS_READ: "see members and their roles",
    Permission.MEMBERS_MANAGE: "invite, add and remove members and admins; change their roles",
    Permission.OWNERSHIP_MANAGE: "make or unmake owners",
    Permission.PROJECT_READ: "see projects, environments, services, deployments and domains",
    Permission.PROJECT_MANAGE: "create, change and delete projects and environments",
    Permission.SERVICE_MANAGE: "create, change and delete services (settings, source)",
    Permission.DEPLOY: "deploy, redeploy, roll back, restart, cancel and remove deployments",
    Permission.LOGS_READ: "read build and runtime logs and metrics",
    Permission.VARIABLES_READ_NAMES: "see variable names (values masked)",
    Permission.VARIABLES_READ_VALUES: "see variable values (never sealed ones)",
    Permission.VARIABLES_WRITE: "set, import and delete variables",
    Permission.DOMAINS_MANAGE: "add and remove domains",
    Permission.WEBHOOKS_MANAGE: "create and delete webhooks (their secret is shown once)",
}

_RANK = {Role.MEMBER: 0, Role.ADMIN: 1, Role.OWNER: 2}


def has_permission(role: Role, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS[role]


def role_at_least(role: Role, minimum: Role) -> bool:
    return _RANK[role] >= _RANK[minimum]


def permission_matrix_markdown() -> str:
    """The matrix as a Markdown table (kept in docs/security.md, checked by a test)."""
    roles = [Role.MEMBER, Role.ADMIN, Role.OWNER]
    lines = [
        "| permission | what it allows | " + " | ".join(r.value for r in roles) + " |",
        "| --- | --- | " + " | ".join("---" for _ in roles) + " |",
    ]
    for permission in Permission:
        marks = " | ".join("✓" if has_permission(r, permission) else "" for r in roles)
        lines.append(f"| `{permission.value}` | {PERMISSION_DESCRIPTIONS[permission]} | {marks} |")
    return "\n".join(lines)
