"""Side effects of jury changes, queued as jobs after commit."""

from __future__ import annotations

from ideaforge.i18n import _, use_locale
from ideaforge.jobs import JobQueue
from ideaforge.mail import build_message, queue_mail


def send_jury_invitation(
    jobs: JobQueue,
    *,
    sender: str,
    to: str,
    challenge_title: str,
    organisation_name: str,
    inviter_name: str,
    link: str,
    locale: str,
) -> None:
    """The one-time link to join a challenge's jury, in the invitee's language (or the site's)."""
    with use_locale(locale):
        subject = _(
            "%(name)s invites you to the jury of “%(challenge)s” on IdeaForge",
            name=inviter_name,
            challenge=challenge_title,
        )
        body = _(
            "Hello,\n\n%(name)s (%(organisation)s) invites you to the jury of the challenge “%(challenge)s” on "
            "IdeaForge: jurors score the shortlisted ideas during the review.\n\n"
            "Open this link to accept, with your IdeaForge account or a new one (it works once, for 14 days):\n"
            "%(link)s\n\n"
            "If you did not expect this invitation, you can ignore this email.\n",
            name=inviter_name,
            organisation=organisation_name,
            challenge=challenge_title,
            link=link,
        )
    queue_mail(jobs, build_message(sender=sender, to=to, subject=subject, body=body, locale=locale))
