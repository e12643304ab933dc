"""Partner organisations abroad: suggestions for a challenge, the public directory, and the double opt-in.

A challenge's organisers (its admins) see listed partner profiles from other countries, ranked by
``ml.matching.rank_partners`` with the stored vectors, and may express interest in one
(``express_interest``: a ``PartnerInterest`` "sent", its owners and admins notified). The partner's
owners and admins accept or decline (``answer_interest``). Contact details are shared only once accepted:
the partner's private contact to the challenge's organisers, the sender's name and email to the partner.
Nothing in this module hands a contact to a page before that (``PartnerCard`` has no contact field).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import asdict, dataclass
from datetime import datetime

import numpy as np
from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from challenges.models import Challenge
from ideaforge.accounts.models import User
from ideaforge.audit import record
from ideaforge.errors import Conflict, Forbidden, ValidationFailed
from ideaforge.i18n import _
from ideaforge.notifications.services import Notifier
from ideaforge.organisations.models import Membership, Organisation, Role
from ideaforge.profiles.models import (
    INTEREST_MESSAGE_MAX,
    CooperationKind,
    InterestStatus,
    PartnerInterest,
    PartnerProfile,
)
from ideaforge.validation import country_name, text_problem
from ideas.similarity import PARTNERS, Similarity, challenge_text
from ml import matching

PAGE_SIZE = 12
SUGGESTIONS = 20
"""How many partners the organiser page suggests."""
CANDIDATES = 60
"""Past this many partners abroad, only the best by whole-text vectors get their offer sentences embedded."""
MEANING_FLOOR = 0.2
"""Search by meaning in the directory keeps partners at least this close to the query (cosine)."""
_MARKUP = re.compile(r"[*_`#>]+")


# --- what pages show of a partner (never its contact) ----------------------------------------------


@dataclass(frozen=True)
class PartnerCard:
    profile_id: int
    organisation_id: int
    slug: str
    name: str
    country: str
    region: str
    offers: str
    seeks: str
    sectors: tuple[str, ...]
    cooperation: tuple[str, ...]


def _card(profile: PartnerProfile, organisation: Organisation) -> PartnerCard:
    return PartnerCard(
        profile_id=profile.id, organisation_id=organisation.id, slug=organisation.slug, name=organisation.name,
        country=organisation.country, region=profile.region or organisation.region, offers=profile.offers,
        seeks=profile.seeks, sectors=tuple(profile.sector_list), cooperation=tuple(profile.cooperation_list),
    )  # fmt: skip


def _listed() -> ColumnElement[bool]:
    return and_(PartnerProfile.listed.is_(True), PartnerProfile.offers != "")


# --- the directory ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DirectoryFilters:
    q: str = ""
    country: str = ""
    kind: str = ""
    sector: str = ""
    meaning: str = ""
    """"1": rank by closeness in meaning to ``q`` instead of matching its words."""

    def active(self) -> dict[str, str]:
        return {k: v for k, v in asdict(self).items() if v}


def _like(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def _filtered(session: AsyncSession, filters: DirectoryFilters, *, words: bool
                    ) -> list[tuple[PartnerProfile, Organisation]]:  # fmt: skip
    query = (
        select(PartnerProfile, Organisation)
        .join(Organisation, Organisation.id == PartnerProfile.organisation_id)
        .where(_listed())
    )
    if filters.country:
        query = query.where(Organisation.country == filters.country.strip().upper()[:2])
    if filters.kind:
        query = query.where(("," + PartnerProfile.cooperation + ",").like(_like(f",{filters.kind.lower()},"),
                                                                           escape="\\"))  # fmt: skip
    if filters.sector:
        query = query.where(("," + PartnerProfile.sectors + ",").like(_like(f",{filters.sector.lower()},"),
                                                                       escape="\\"))  # fmt: skip
    if words:
        for term in filters.q.lower().split()[:8]:
            pattern = _like(term)
            query = query.where(or_(*(func.lower(column).like(pattern, escape="\\") for column in (
                PartnerProfile.offers, PartnerProfile.seeks, PartnerProfile.sectors, PartnerProfile.region,
                Organisation.name, Organisation.region))))  # fmt: skip
    rows = await session.execute(query.order_by(Organisation.name, PartnerProfile.id))
    return [(profile, organisation) for profile, organisation in rows]


async def partner_directory(
    session: AsyncSession, filters: DirectoryFilters, *, page: int, similarity: Similarity | None = None,
    page_size: int = PAGE_SIZE,
) -> tuple[list[PartnerCard], int]:  # fmt: skip
    """Listed partners matching every filter, by name; with ``meaning`` and a query, by closeness in meaning
    of their offers to the query (embedded through the similarity service, searched in its "partners"
    partition)."""
    by_meaning = bool(filters.meaning and filters.q.strip() and similarity is not None)
    rows = await _filtered(session, filters, words=not by_meaning)
    if by_meaning and similarity is not None:
        rows = await _by_meaning(session, similarity, filters.q, rows)
    start = (page - 1) * page_size
    return [_card(p, o) for p, o in rows[start : start + page_size]], len(rows)


async def _by_meaning(session: AsyncSession, similarity: Similarity, query: str,
                      rows: list[tuple[PartnerProfile, Organisation]]) -> list[tuple[PartnerProfile, Organisation]]:  # fmt: skip
    if not rows:
        return []
    await similarity.partner_vectors(session, [p for p, _o in rows])  # embeds and indexes any missing
    part = similarity.index.partition(PARTNERS)
    vector = await similarity.batcher.encode_one(query)
    hits = await asyncio.to_thread(part.search, vector, len(part))
    by_id = {p.id: (p, o) for p, o in rows}
    return [by_id[h.id] for h in hits if h.id in by_id and h.score >= MEANING_FLOOR]


async def directory_facets(session: AsyncSession) -> dict[str, list[str]]:
    """The countries and sectors the directory's filters offer, taken from listed partners only."""
    rows = (
        await session.execute(
            select(Organisation.country, PartnerProfile.sectors)
            .join(Organisation, Organisation.id == PartnerProfile.organisation_id)
            .where(_listed())
        )
    ).all()
    countries = sorted({country for country, _s in rows}, key=country_name)
    sectors = sorted({sector for _c, sectors in rows for sector in sectors.split(",") if sector})
    return {"countries": countries, "sectors": sectors, "kinds": [kind.value for kind in CooperationKind]}


# --- suggestions for a challenge -------------------------------------------------------------------


@dataclass(frozen=True)
class PartnerSuggestion:
    partner: PartnerCard
    score: float
    reason: str
    """The offer sentence that answers the challenge best."""


def _sentences(offers: str) -> tuple[str, ...]:
    plain = _MARKUP.sub("", offers)
    return matching.profile_sentences(plain)


async def suggest_partners(
    session: AsyncSession, challenge: Challenge, similarity: Similarity, *, limit: int = SUGGESTIONS
) -> list[PartnerSuggestion]:
    """Listed partners from other countries than the challenge's (never its own organisation), best first,
    each with the offer sentence that matched. Empty when the challenge is not open to partners."""
    if not challenge.open_to_partners:
        return []
    home = challenge.country.strip().upper()
    result = await session.execute(
        select(PartnerProfile, Organisation)
        .join(Organisation, Organisation.id == PartnerProfile.organisation_id)
        .where(_listed(), Organisation.country != home, Organisation.id != challenge.organisation_id)
        .order_by(PartnerProfile.id)
    )
    rows = [(profile, organisation) for profile, organisation in result]
    if not rows:
        return []
    own = await session.scalar(
        select(PartnerProfile).where(PartnerProfile.organisation_id == challenge.organisation_id)
    )
    profiles = [p for p, _o in rows] + ([own] if own is not None and own.offers.strip() else [])
    vectors = await similarity.partner_vectors(session, profiles)
    rows = [(p, o) for p, o in rows if p.id in vectors]
    if not rows:
        return []
    challenge_vector = await similarity.batcher.encode_one(challenge_text(challenge))
    organisation_vector = vectors[own.id][0] if own is not None and own.id in vectors else None
    organisation_offers = own.offers_text() if organisation_vector is not None and own is not None else ""
    dimension = len(challenge_vector)
    wholes = np.stack([vectors[p.id][0] for p, _o in rows])
    seeks = np.stack([
        s if (s := vectors[p.id][1]) is not None else np.zeros(dimension, np.float32) for p, _o in rows
    ])  # fmt: skip
    if len(rows) > CANDIDATES:  # a first cut on the stored vectors: only the best get sentence vectors
        first = wholes @ challenge_vector
        if organisation_vector is not None:
            first = first + matching.SEEKS_WEIGHT * (seeks @ organisation_vector)
        keep = sorted(np.argsort(-first, kind="stable")[:CANDIDATES].tolist())
        rows, wholes, seeks = [rows[i] for i in keep], wholes[keep], seeks[keep]
    sentences = [_sentences(p.offers) for p, _o in rows]
    flat = [s for group in sentences for s in group]
    sentence_vectors = await similarity.batcher.encode(flat)
    lengths = [len(group) for group in sentences]
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    encoded = matching.EncodedPartners(
        matching.EncodedProfiles(wholes, tuple(sentences), sentence_vectors, starts), seeks
    )
    partners = [
        matching.Partner(
            id=str(p.id),
            country=o.country,
            offers=p.offers,
            seeks=p.seeks,
            kind=p.cooperation,
            region=p.region or o.region,
        )
        for p, o in rows
    ]
    query = matching.Challenge(id=str(challenge.id), text=challenge_text(challenge), country=home,
                               organisation_offers=organisation_offers)  # fmt: skip
    ranked = matching.rank_partners(
        query, partners, challenge_vector, encoded, organisation_vector, limit=limit
    )
    by_id = {str(p.id): (p, o) for p, o in rows}
    return [PartnerSuggestion(_card(*by_id[m.partner_id]), m.score, m.reason) for m in ranked]


# --- the double opt-in -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Contact:
    name: str
    email: str


@dataclass(frozen=True)
class SentInterest:
    """An interest as the challenge's organisers see it; ``contact`` only once the partner accepted."""

    interest: PartnerInterest
    partner_name: str
    partner_slug: str
    partner_country: str
    contact: Contact | None


@dataclass(frozen=True)
class ReceivedInterest:
    """An interest as the partner's admins see it; ``contact`` only once they accepted."""

    interest: PartnerInterest
    challenge: Challenge
    organisation_name: str
    contact: Contact | None


async def _admins(session: AsyncSession, organisation_id: int) -> list[User]:
    return list(await session.scalars(
        select(User).join(Membership, Membership.user_id == User.id)
        .where(Membership.organisation_id == organisation_id, Membership.role.in_((Role.OWNER, Role.ADMIN)),
               User.is_active.is_(True))
        .order_by(User.id)
    ))  # fmt: skip


async def is_organisation_admin(session: AsyncSession, organisation_id: int, user: User) -> bool:
    role = await session.scalar(select(Membership.role).where(
        Membership.organisation_id == organisation_id, Membership.user_id == user.id))  # fmt: skip
    return role in (Role.OWNER, Role.ADMIN)


def interests_link(slug: str) -> str:
    return f"/organisations/{slug}/partner-interests"


def partners_link(challenge_id: int) -> str:
    return f"/challenges/{challenge_id}/partners"


async def express_interest(
    session: AsyncSession, challenge: Challenge, actor: User, partner_organisation_id: int, message: str,
    now: datetime, notifier: Notifier | None, *, actor_is_admin: bool,
) -> PartnerInterest:  # fmt: skip
    """The challenge's organisers tell a listed partner abroad they are interested; its owners and admins
    are notified with a link to answer. ``actor_is_admin``: the caller checked the actor's access."""
    challenge_id, challenge_title, home = challenge.id, challenge.title, challenge.country.strip().upper()
    organiser = challenge.organisation.name
    actor_id = actor.id
    if not actor_is_admin:
        raise Forbidden(_("Only the challenge's organisers can contact partner organisations."))
    if not challenge.open_to_partners:
        raise Conflict(_("This challenge is not open to partners abroad."))
    message = message.strip()
    if problem := text_problem(message, required=False, max_length=INTEREST_MESSAGE_MAX):
        raise ValidationFailed({"message": problem})
    found = (await session.execute(
        select(PartnerProfile, Organisation).join(Organisation, Organisation.id == PartnerProfile.organisation_id)
        .where(PartnerProfile.organisation_id == partner_organisation_id, _listed())
    )).first()  # fmt: skip
    if found is None or found[1].country == home or found[1].id == challenge.organisation_id:
        raise Conflict(_("This organisation is not a listed partner from another country."))
    partner = found[1]
    partner_name, partner_slug = partner.name, partner.slug
    interest = PartnerInterest(challenge_id=challenge_id, partner_organisation_id=partner_organisation_id,
                               message=message, sent_by_id=actor_id, created_at=now)  # fmt: skip
    session.add(interest)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        raise Conflict(_("You have already expressed interest in %(name)s for this challenge.",
                         name=partner_name)) from None  # fmt: skip
    interest_id = interest.id
    record(session, actor_id=actor_id, organisation_id=partner_organisation_id, subject_type="partner_interest",
           subject_id=interest_id, action="sent", detail={"challenge_id": challenge_id})  # fmt: skip
    mails = []
    if notifier is not None:
        mails = notifier.notify(session, await _admins(session, partner_organisation_id), "partner_interest",
                                lambda: _("%(organiser)s would like to work with %(partner)s on the challenge "
                                          "“%(title)s”. Accept to exchange contact details, or decline.",
                                          organiser=organiser, partner=partner_name, title=challenge_title),
                                interests_link(partner_slug))  # fmt: skip
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise Conflict(_("You have already expressed interest in %(name)s for this challenge.",
                         name=partner_name)) from None  # fmt: skip
    if notifier is not None:
        notifier.send(mails)
    return interest


async def answer_interest(
    session: AsyncSession,
    interest_id: int,
    actor: User,
    accept: bool,
    now: datetime,
    notifier: Notifier | None,
) -> PartnerInterest:
    """The partner's owners and admins accept (both sides then see each other's contact, and both are
    notified) or decline (the organisers are told; nothing is shared). Answered once: a second answer,
    even a concurrent one, is a ``Conflict``."""
    actor_id = actor.id
    interest = await session.get(PartnerInterest, interest_id)
    if interest is None:
        raise Conflict(_("This expression of interest does not exist."))
    partner_id, challenge_id, sender_id = (
        interest.partner_organisation_id,
        interest.challenge_id,
        interest.sent_by_id,
    )
    if not await is_organisation_admin(session, partner_id, actor) and not actor.is_superuser:
        raise Forbidden(_("Only the partner organisation's owners and admins can answer."))
    status = InterestStatus.ACCEPTED if accept else InterestStatus.DECLINED
    changed = await session.execute(
        update(PartnerInterest)
        .where(PartnerInterest.id == interest_id, PartnerInterest.status == InterestStatus.SENT)
        .values(status=status, answered_at=now)
    )
    if not getattr(changed, "rowcount", 0):
        await session.rollback()
        raise Conflict(_("This expression of interest has already been answered."))
    challenge = await session.get(Challenge, challenge_id)
    partner = await session.get(Organisation, partner_id)
    assert challenge is not None
    assert partner is not None
    title, organisation_id, partner_name, partner_slug = (challenge.title, challenge.organisation_id,
                                                           partner.name, partner.slug)  # fmt: skip
    record(session, actor_id=actor_id, organisation_id=partner_id, subject_type="partner_interest",
           subject_id=interest_id, action=status.value, detail={"challenge_id": challenge_id})  # fmt: skip
    organisers = await _admins(session, organisation_id)
    sender = await session.get(User, sender_id) if sender_id is not None else None
    if sender is not None and sender.is_active:
        organisers = [sender, *(u for u in organisers if u.id != sender.id)]
    mails = []
    if notifier is not None and accept:
        mails = notifier.notify(session, organisers, "partner_interest_accepted", lambda: _(
            "%(partner)s accepted your interest for “%(title)s”: its contact details are now on the partner page.",
            partner=partner_name, title=title), partners_link(challenge_id))  # fmt: skip
        others = [u for u in await _admins(session, partner_id) if u.id != actor_id]
        mails += notifier.notify(session, others, "partner_interest_accepted", lambda: _(
            "%(partner)s accepted the interest for “%(title)s”: the organisers' contact details are on the "
            "partner interests page.", partner=partner_name, title=title), interests_link(partner_slug))  # fmt: skip
    elif notifier is not None:
        mails = notifier.notify(session, organisers, "partner_interest_declined", lambda: _(
            "%(partner)s declined your interest for “%(title)s”.", partner=partner_name, title=title),
            partners_link(challenge_id))  # fmt: skip
    await session.commit()
    if notifier is not None:
        notifier.send(mails)
    await session.refresh(interest)
    return interest


async def _challenge_contact(
    session: AsyncSession, interest: PartnerInterest, organisation_id: int
) -> Contact:
    """Who the partner talks to: the sender, or else the challenge organisation's first owner or admin."""
    sender = await session.get(User, interest.sent_by_id) if interest.sent_by_id is not None else None
    if sender is None:
        admins = await _admins(session, organisation_id)
        sender = admins[0] if admins else None
    return Contact(sender.display_name, sender.email) if sender is not None else Contact("", "")


async def sent_interests(session: AsyncSession, challenge_id: int) -> list[SentInterest]:
    """The challenge's expressions of interest, newest first; the partner's contact only when accepted."""
    rows = (await session.execute(
        select(PartnerInterest, Organisation, PartnerProfile)
        .join(Organisation, Organisation.id == PartnerInterest.partner_organisation_id)
        .outerjoin(PartnerProfile, PartnerProfile.organisation_id == Organisation.id)
        .where(PartnerInterest.challenge_id == challenge_id)
        .order_by(PartnerInterest.created_at.desc(), PartnerInterest.id.desc())
    )).all()  # fmt: skip
    found: list[SentInterest] = []
    for interest, organisation, profile in rows:
        contact = (
            Contact(profile.contact_name, profile.contact_email)
            if interest.status is InterestStatus.ACCEPTED and profile is not None
            else None
        )
        found.append(
            SentInterest(interest, organisation.name, organisation.slug, organisation.country, contact)
        )
    return found


async def received_interests(session: AsyncSession, organisation_id: int) -> list[ReceivedInterest]:
    """The interests a partner organisation received, unanswered first, then newest first; the challenge
    side's contact only when accepted."""
    rows = (await session.execute(
        select(PartnerInterest, Challenge, Organisation)
        .join(Challenge, Challenge.id == PartnerInterest.challenge_id)
        .join(Organisation, Organisation.id == Challenge.organisation_id)
        .where(PartnerInterest.partner_organisation_id == organisation_id)
        .order_by(PartnerInterest.status != InterestStatus.SENT, PartnerInterest.created_at.desc(),
                  PartnerInterest.id.desc())
    )).all()  # fmt: skip
    found: list[ReceivedInterest] = []
    for interest, challenge, organisation in rows:
        contact = (
            await _challenge_contact(session, interest, organisation.id)
            if interest.status is InterestStatus.ACCEPTED
            else None
        )
        found.append(ReceivedInterest(interest, challenge, organisation.name, contact))
    return found


async def received_interest(
    session: AsyncSession, organisation_id: int, interest_id: int
) -> ReceivedInterest | None:
    for item in await received_interests(session, organisation_id):
        if item.interest.id == interest_id:
            return item
    return None
