"""Who may do what in an organisation: one named predicate per action."""

from __future__ import annotations

from ideaforge.organisations.models import Role


def can_invite_members(role: Role | None) -> bool:
    return role is not None and role.at_least(Role.ADMIN)


def can_grant_role(role: Role | None, granted: Role) -> bool:
    """Admins invite up to admin; only owners may make other owners."""
    if role is None:
        return False
    return role is Role.OWNER or (role.at_least(Role.ADMIN) and granted is not Role.OWNER)


def can_edit_organisation(role: Role | None) -> bool:
    return role is not None and role.at_least(Role.ADMIN)
