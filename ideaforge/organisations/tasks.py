"""Side effects of organisation changes, queued as jobs after commit."""

from __future__ import annotations

from ideaforge.i18n import _, use_locale
from ideaforge.jobs import JobQueue
from ideaforge.mail import build_message, queue_mail


def send_invitation(
    jobs: JobQueue, *, sender: str, to: str, organisation_name: str, inviter_name: str, link: str, locale: str
) -> None:
    with use_locale(locale):
        subject = _(
            "%(name)s invites you to join %(organisation)s on IdeaForge",
            name=inviter_name,
            organisation=organisation_name,
        )
        body = _(
            "Hello,\n\n%(name)s invites you to join %(organisation)s on IdeaForge.\n\n"
            "Open this link to accept (it works once, for 14 days):\n%(link)s\n\n"
            "If you did not expect this invitation, you can ignore this email.\n",
            name=inviter_name,
            organisation=organisation_name,
            link=link,
        )
    queue_mail(jobs, build_message(sender=sender, to=to, subject=subject, body=body, locale=locale))
