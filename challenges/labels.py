"""Translated names for challenge values, shared by pages and emails."""

from __future__ import annotations

from challenges.models import Phase, SubmitPolicy, Visibility
from ideaforge.i18n import _


def phase_labels() -> dict[Phase, str]:
    return {
        Phase.DRAFT: _("Draft"),
        Phase.SUBMISSION: _("Submission"),
        Phase.VOTING: _("Voting"),
        Phase.REVIEW: _("Jury review"),
        Phase.RESULTS: _("Results"),
        Phase.CLOSED: _("Closed"),
    }


def policy_labels() -> dict[SubmitPolicy, str]:
    return {
        SubmitPolicy.SIGNED_IN: _("Anyone signed in"),
        SubmitPolicy.VERIFIED_EMAIL: _("People with a confirmed email address"),
        SubmitPolicy.MEMBERS: _("Members of the organisation only"),
    }


def visibility_labels() -> dict[Visibility, str]:
    return {
        Visibility.PUBLIC: _("Public: listed in the directory"),
        Visibility.UNLISTED: _("Unlisted: only people with the link"),
    }


def policy_sentence(policy: SubmitPolicy, organisation: str) -> str:
    """The submit rule as a whole sentence (a label does not fit mid-sentence in every language)."""
    if policy is SubmitPolicy.VERIFIED_EMAIL:
        return _("Anyone with a confirmed email address may submit ideas.")
    if policy is SubmitPolicy.MEMBERS:
        return _("Only members of %(organisation)s may submit ideas.", organisation=organisation)
    return _("Anyone with an account may submit ideas.")
