"""The permission matrix: consistent in itself, and what docs/security.md shows operators."""

from __future__ import annotations

from pathlib import Path

import pytest

from caboose.core.permissions import (
    PERMISSION_DESCRIPTIONS,
    ROLE_PERMISSIONS,
    Permission,
    has_permission,
    permission_matrix_markdown,
    role_at_least,
)
from caboose.models import Role

SECURITY_DOC = Path(__file__).resolve().parents[3] / "docs" / "security.md"


def test_docs_show_the_matrix_the_code_enforces() -> None:
    """Change a role's permissions and this fails until docs/security.md is updated too."""
    assert permission_matrix_markdown() in SECURITY_DOC.read_text(encoding="utf-8")


def test_every_permission_is_described_and_in_the_table() -> None:
    table = permission_matrix_markdown()
    for permission in Permission:
        assert PERMISSION_DESCRIPTIONS[permission]
        assert f"`{permission.value}`" in table


def test_higher_roles_can_do_everything_lower_roles_can() -> None:
    assert ROLE_PERMISSIONS[Role.MEMBER] < ROLE_PERMISSIONS[Role.ADMIN]
    assert ROLE_PERMISSIONS[Role.ADMIN] < ROLE_PERMISSIONS[Role.OWNER]
    assert role_at_least(Role.OWNER, Role.ADMIN) and not role_at_least(Role.MEMBER, Role.ADMIN)


@pytest.mark.parametrize(
    ("role", "allowed", "refused"),
    [
        (
            Role.MEMBER,
            {Permission.DEPLOY, Permission.LOGS_READ, Permission.VARIABLES_READ_NAMES},
            {
                Permission.VARIABLES_READ_VALUES,
                Permission.SERVICE_MANAGE,
                Permission.MEMBERS_MANAGE,
            },
        ),
        (
            Role.ADMIN,
            {Permission.MEMBERS_MANAGE, Permission.PROJECT_MANAGE, Permission.VARIABLES_WRITE},
            {Permission.WORKSPACE_DELETE, Permission.OWNERSHIP_MANAGE},
        ),
        (Role.OWNER, set(Permission), set()),
    ],
)
def test_the_roles_of_the_issue(
    role: Role, allowed: set[Permission], refused: set[Permission]
) -> None:
    assert all(has_permission(role, p) for p in allowed)
    assert not any(has_permission(role, p) for p in refused)
