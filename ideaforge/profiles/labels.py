"""Names of profile values, in the visitor's language."""

from __future__ import annotations

from ideaforge.i18n import _
from ideaforge.profiles.models import CooperationKind


def cooperation_labels() -> dict[str, str]:
    return {
        CooperationKind.PILOT: _("Pilot projects"),
        CooperationKind.RESEARCH: _("Research"),
        CooperationKind.INVESTMENT: _("Investment"),
        CooperationKind.SUPPLY: _("Supply of products or services"),
        CooperationKind.TRAINING: _("Training"),
        CooperationKind.OTHER: _("Other"),
    }
