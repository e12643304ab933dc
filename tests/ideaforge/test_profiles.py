"""Expert and partner profiles: the pages, their validation, privacy of contacts, and embedding."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from ideaforge.accounts.models import User
from ideaforge.organisations.models import Membership, Organisation, Role
from ideaforge.profiles.models import ExpertConflict, ExpertProfile, PartnerProfile
from ideaforge.profiles.services import expert_profiles, partner_profiles
from ideas.models import StoredVector
from tests.helpers import csrf_token, field_error, login, logout, post_form, register

EXPERTISE: dict[str, Any] = {
    "expertise": "Cycling infrastructure and traffic calming in medium-sized cities.",
    "keywords": " Mobility, cycling ,  street   design, cycling",
    "languages": ["fr", "en"],
    "country": "FR",
    "organisation_id": "",
    "capacity": "7",
    "available": "on",
}

PARTNER: dict[str, Any] = {
    "listed": "on",
    "offers": "Test sites for **urban pilots** with air-quality sensors.",
    "seeks": "Cities abroad that want greener streets.",
    "sectors": "Environment, smart city",
    "cooperation": ["research", "pilot"],
    "region": "Catalonia",
    "contact_name": "Private Person",
    "contact_email": "secret.contact@partner.example",
}


async def post_multi(client: Any, url: str, data: dict[str, Any]) -> Any:
    """A form post that may repeat a field (checkboxes)."""
    if "csrftoken" not in client.cookies:
        await client.get("/")
    return await client.post(url, data={**data, "_csrf_token": csrf_token(client)}, follow_redirects=False)


async def new_org(client: Any, name: str = "Barcelona Urban Lab", country: str = "ES") -> str:
    response = await post_form(
        client, "/organisations/new", {"name": name, "kind": "lab", "country": country}
    )
    assert response.status_code == 303
    return str(response.headers["location"]).rsplit("/", 1)[-1]


async def count(db: Any, model: Any) -> int:
    return int(await db.scalar(select(func.count()).select_from(model)))


async def user_id(db: Any, email: str) -> int:
    return int(await db.scalar(select(User.id).where(User.email == email)))


async def test_expert_profile_is_created_edited_and_embedded(client, app, db):
    await register(client)
    profile_page = (await client.get("/profile")).text
    assert 'href="/account/expertise"' in profile_page, "the account page links to the expertise page"
    slug = await new_org(client)
    org_id = await db.scalar(select(Organisation.id).where(Organisation.slug == slug))

    page = (await client.get("/account/expertise")).text
    assert "avoids conflicts of interest" in page
    assert "How many ideas of one challenge you accept to advise on, from 1 to 50." in page
    assert "Switch this off when you have no time" in page
    assert f'<option value="{org_id}">Barcelona Urban Lab</option>' in page

    saved = await post_multi(client, "/account/expertise", EXPERTISE | {"organisation_id": str(org_id)})
    assert saved.status_code == 303
    assert saved.headers["location"] == "/account/expertise"
    profile = await db.scalar(select(ExpertProfile))
    assert profile is not None
    assert profile.keywords == "cycling,mobility,street design", "normalised: trimmed, lower case, distinct"
    assert (profile.languages, profile.country, profile.capacity, profile.available) == (
        "fr,en",
        "FR",
        7,
        True,
    )
    assert profile.organisation_id == org_id
    page = (await client.get("/account/expertise")).text
    assert "Your expert profile has been saved." in page
    assert 'value="cycling, mobility, street design"' in page
    assert 'value="fr" checked' in page

    await app.state.jobs.drain()
    vector = await db.scalar(select(StoredVector).where(StoredVector.kind == "expert"))
    assert vector is not None
    assert (vector.object_id, vector.partition) == (profile.id, "experts")

    # Edit: not available, no organisation, capacity at the top of the range.
    edited = EXPERTISE | {"capacity": "50", "available": ""}
    edited.pop("available")
    assert (await post_multi(client, "/account/expertise", edited)).status_code == 303
    db.expire_all()
    profile = await db.scalar(select(ExpertProfile))
    assert profile is not None
    assert (profile.capacity, profile.available, profile.organisation_id) == (50, False, None)
    assert await count(db, ExpertProfile) == 1, "one profile per user: edited, not duplicated"
    assert "You are not available at the moment" in (await client.get("/account/expertise")).text
    assert [p.id for p in await expert_profiles(db)] == []
    assert [p.id for p in await expert_profiles(db, available_only=False)] == [profile.id]


async def test_invalid_expert_profiles_are_refused_with_the_field_error(client, db):
    await register(client)
    await new_org(client)
    stranger = await register(client)  # now signed in as someone who belongs to no organisation
    assert stranger
    foreign_org = await db.scalar(select(Organisation.id))
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("expertise", {"expertise": "   "}, "Describe your expertise"),
        ("capacity", {"capacity": "0"}, "from 1 to 50"),
        ("capacity", {"capacity": "-3"}, "from 1 to 50"),
        ("capacity", {"capacity": "51"}, "from 1 to 50"),
        ("capacity", {"capacity": "lots"}, "from 1 to 50"),
        ("languages", {"languages": ["xx"]}, "two-letter language codes"),
        ("languages", {"languages": []}, "at least one language"),
        ("country", {"country": "ZZ"}, "Choose a country from the list."),
        ("country", {"country": ""}, "Choose a country."),
        ("organisation_id", {"organisation_id": str(foreign_org)}, "one of your organisations"),
        ("organisation_id", {"organisation_id": "abc"}, "one of your organisations"),
        ("keywords", {"keywords": ",".join(f"k{n}" for n in range(21))}, "at most 20 keywords"),
    ]
    for field, change, message in cases:
        response = await post_multi(client, "/account/expertise", EXPERTISE | change)
        assert response.status_code == 422, (field, change)
        assert message in field_error(response.text, field), (
            field,
            change,
            field_error(response.text, field),
        )
        assert 'class="error-summary"' in response.text
        assert f'href="#field-{field}"' in response.text
    assert await count(db, ExpertProfile) == 0
    typed = await post_multi(client, "/account/expertise", EXPERTISE | {"capacity": "0"})
    assert "Cycling infrastructure and traffic calming" in typed.text, "what was typed is kept"


async def test_declared_conflicts_are_added_and_removed_by_their_expert_only(client, db):
    other = await register(client)
    await new_org(client, "Ville de Québec", "CA")
    await logout(client)
    expert = await register(client)
    org_id = await db.scalar(select(Organisation.id))

    by_org = {"conflict_organisation_id": str(org_id), "conflict_note": "Former employer"}
    assert (await post_form(client, "/account/expertise/conflicts", by_org)).status_code == 303
    by_email = await post_form(
        client, "/account/expertise/conflicts", {"conflict_email": other.email.upper()}
    )
    assert by_email.status_code == 303
    page = (await client.get("/account/expertise")).text
    assert "Organisation: Ville de Québec" in page
    assert "Former employer" in page

    refused = {
        "conflict_organisation_id": ({"conflict_organisation_id": str(org_id)}, "already declared"),
        "conflict_email": ({"conflict_email": "nobody@example.org"}, "No IdeaForge account"),
    }
    for field, (data, message) in refused.items():
        response = await post_form(client, "/account/expertise/conflicts", data)
        assert response.status_code == 422
        assert message in field_error(response.text, field)
    myself = await post_form(client, "/account/expertise/conflicts", {"conflict_email": expert.email})
    assert "yourself" in field_error(myself.text, "conflict_email")
    neither = await post_form(client, "/account/expertise/conflicts", {})
    assert neither.status_code == 422
    both_targets = {"conflict_organisation_id": str(org_id), "conflict_email": other.email}
    both = await post_form(client, "/account/expertise/conflicts", both_targets)
    assert both.status_code == 422
    assert await count(db, ExpertConflict) == 2

    rows = list(await db.scalars(select(ExpertConflict).order_by(ExpertConflict.id)))
    assert (rows[0].organisation_id, rows[0].user_id) == (org_id, None)
    assert rows[1].user_id == await user_id(db, other.email)

    await logout(client)
    await login(client, other.email)
    stolen = await post_form(client, f"/account/expertise/conflicts/{rows[0].id}/delete", {})
    assert stolen.status_code == 404, "only the expert removes their conflicts"
    await logout(client)
    await login(client, expert.email)
    removed = await post_form(client, f"/account/expertise/conflicts/{rows[0].id}/delete", {})
    assert removed.status_code == 303
    assert await count(db, ExpertConflict) == 1


async def test_the_expertise_page_needs_an_account(client):
    await client.get("/")
    page = await client.get("/account/expertise", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=/account/expertise"
    assert (await post_multi(client, "/account/expertise", EXPERTISE)).status_code == 401


async def test_partner_profile_is_edited_by_admins_and_its_contact_stays_private(client, app, db):
    owner = await register(client)
    slug = await new_org(client)
    org_page = (await client.get(f"/organisations/{slug}")).text
    assert "Not listed as a partner" in org_page
    form = await client.get(f"/organisations/{slug}/partner-profile")
    assert form.status_code == 200
    assert "Never shown on public pages" in form.text

    bad = {"listed": "on", "cooperation": ["castle"], "contact_email": "nope"}
    incomplete = await post_multi(client, f"/organisations/{slug}/partner-profile", bad)
    assert incomplete.status_code == 422
    for field in ("offers", "seeks", "cooperation", "contact_name", "contact_email"):
        assert field_error(incomplete.text, field), field
    assert await count(db, PartnerProfile) == 0

    saved = await post_multi(client, f"/organisations/{slug}/partner-profile", PARTNER)
    assert saved.status_code == 303
    assert saved.headers["location"] == f"/organisations/{slug}"
    profile = await db.scalar(select(PartnerProfile))
    assert profile is not None
    assert (profile.listed, profile.sectors, profile.cooperation) == (
        True,
        "environment,smart city",
        "pilot,research",
    )
    assert profile.contact_email == "secret.contact@partner.example"
    assert [p.id for p in await partner_profiles(db)] == [profile.id]

    await app.state.jobs.drain()
    kinds = dict((await db.execute(select(StoredVector.kind, StoredVector.partition))).all())
    assert kinds == {"partner": "partners", "partner_seeks": "partner_seeks"}

    # The organisation page says it is listed and what it offers, never the contact.
    org_page = (await client.get(f"/organisations/{slug}")).text
    assert "Listed as a partner organisation" in org_page
    assert "<strong>urban pilots</strong>" in org_page
    assert "Pilot projects, Research" in org_page
    public_pages = (
        "/",
        f"/organisations/{slug}",
        "/organisations/",
        "/challenges/",
        f"/organisations/{slug}/challenges",
    )
    for who in ("owner", "anonymous"):
        for public in public_pages:
            html = (await client.get(public)).text
            assert "secret.contact" not in html, (public, who)
            assert "Private Person" not in html, (public, who)
        await logout(client)

    # Opting out keeps the profile but leaves the directory.
    await login(client, owner.email)
    left = dict(PARTNER)
    left.pop("listed")
    assert (await post_multi(client, f"/organisations/{slug}/partner-profile", left)).status_code == 303
    assert "Listed as a partner organisation" not in (await client.get(f"/organisations/{slug}")).text
    assert await partner_profiles(db) == []
    assert len(await partner_profiles(db, listed_only=False)) == 1


async def test_only_owners_and_admins_edit_the_partner_profile(client, db):
    await register(client)
    slug = await new_org(client)
    await logout(client)
    assert (
        await client.get(f"/organisations/{slug}/partner-profile", follow_redirects=False)
    ).status_code == 303
    assert (await post_multi(client, f"/organisations/{slug}/partner-profile", PARTNER)).status_code == 401
    member = await register(client)
    org_id = await db.scalar(select(Organisation.id))
    assert (await client.get(f"/organisations/{slug}/partner-profile")).status_code == 403
    assert (await post_multi(client, f"/organisations/{slug}/partner-profile", PARTNER)).status_code == 403
    db.add(Membership(organisation_id=org_id, user_id=await user_id(db, member.email), role=Role.MODERATOR))
    await db.commit()
    assert (await client.get(f"/organisations/{slug}/partner-profile")).status_code == 403
    assert "partner-profile" not in (await client.get(f"/organisations/{slug}")).text
    assert (await client.get("/organisations/nowhere/partner-profile")).status_code == 404
    assert await count(db, PartnerProfile) == 0
    membership = await db.scalar(select(Membership).where(Membership.role == Role.MODERATOR))
    assert membership is not None
    membership.role = Role.ADMIN
    await db.commit()
    assert (await post_multi(client, f"/organisations/{slug}/partner-profile", PARTNER)).status_code == 303
    assert await count(db, PartnerProfile) == 1


async def test_demo_profiles_are_listed_and_embedded_by_reembedding(client, backend, db, embedder):
    from ideaforge.app import similarity_service
    from ideaforge.demo import PARTNERS, load_demo

    assert await load_demo(backend.settings)
    assert not await load_demo(backend.settings), "idempotent"
    experts = await expert_profiles(db, available_only=False)
    assert len({p.country for p in experts}) >= 4, "experts in several countries"
    assert len(await partner_profiles(db)) == len(PARTNERS)
    page = (await client.get("/organisations/barcelona-urban-lab")).text
    assert "Listed as a partner organisation" in page
    assert "partners@barcelona.demo" not in page

    async with similarity_service(
        backend.settings, embedder
    ) as similarity:  # what `ideaforge index rebuild` runs
        await similarity.reembed()
    counted = await db.execute(select(StoredVector.kind, func.count()).group_by(StoredVector.kind))
    kinds = {kind: n for kind, n in counted}
    assert kinds == {"expert": len(experts), "partner": len(PARTNERS), "partner_seeks": len(PARTNERS)}
