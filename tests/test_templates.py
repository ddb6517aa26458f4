"""The page templates: each page renders, a project overrides one block or the base, and the
blocks and partials are the documented ones (docs/templates.rst).

The override examples are the files the docs include (docs/examples/), so the docs show what works.
"""

from __future__ import annotations

import copy
import re
import shutil
from pathlib import Path

import pytest
from django.template.loader import get_template
from django.template.loader_tags import BlockNode

from .factories import CredentialFactory

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "django_passkeys" / "templates"
PARTIALS = TEMPLATES / "django_passkeys" / "partials"
DOCS = ROOT / "docs" / "templates.rst"
EXAMPLES = ROOT / "docs" / "examples"

LOGIN, MANAGE, SESSIONS = "/auth/passkey/login/", "/auth/passkey/manage/", "/auth/passkey/sessions/"
#: Each page's template, and its URL (the login page signed out, the others signed in).
PAGES = {
    "django_passkeys/login.html": LOGIN,
    "django_passkeys/manage.html": MANAGE,
    "django_passkeys/sessions.html": SESSIONS,
    "django_passkeys/totp.html": "/auth/passkey/totp/",
    "django_passkeys/recovery_codes.html": "/auth/passkey/recovery-codes/",
    "django_passkeys/recovery_codes_new.html": "/auth/passkey/recovery-codes/",
    "django_passkeys/security.html": "/auth/passkey/security/",
    "django_passkeys/cooldown.html": "/auth/passkey/cooldown/",
    # Account recovery; signed in, the verify page says that no recovery is in progress.
    "django_passkeys/recover.html": "/auth/passkey/recover/",
    "django_passkeys/recover_verify.html": "/auth/passkey/recover/verify",
    "django_passkeys/recover_done.html": "/auth/passkey/recover/done",
    "django_passkeys/recover_approvals.html": "/auth/passkey/recover/approvals/",
    # The move off passwords (docs/rollout.rst).
    "django_passkeys/reauth.html": "/auth/passkey/reauth/",
    "django_passkeys/upgrade.html": "/auth/passkey/upgrade/",
    "django_passkeys/passkey_only.html": "/auth/passkey/passkey-only/",
}


def _just_signed_in_with_a_password(api, user):
    """The upgrade page shows only right after a password sign-in, to a user without passkeys."""
    import time

    from django_passkeys.upgrade import PASSWORD_SIGN_IN_KEY

    user.passkeys.all().delete()
    session = api.client.session
    session[PASSWORD_SIGN_IN_KEY] = int(time.time())
    session.save()


#: What puts the user in the state a page is shown in, after the sign-in.
SETUP = {"django_passkeys/upgrade.html": _just_signed_in_with_a_password}
#: Pages that answer a form post (shown once), not a GET.
POSTED = {"django_passkeys/recovery_codes_new.html"}


@pytest.fixture
def get_page(api, user):
    """``get_page(template_name)``: the page's HTML, signed in as a user with one passkey
    except for the login page."""

    def _get(template_name: str):
        if template_name != "django_passkeys/login.html":
            api.login(user)
            CredentialFactory(user=user, name="Work laptop")
            SETUP.get(template_name, lambda api, user: None)(api, user)
        if template_name in POSTED:
            response = api.client.post(
                PAGES[template_name], {}, secure=True, HTTP_X_CSRFTOKEN=api.csrf_token()
            )
        else:
            response = api.client.get(PAGES[template_name], secure=True)
        assert response.status_code == 200
        return response

    return _get


def project_templates(settings, tmp_path: Path, example: str) -> Path:
    """Make a copy of ``docs/examples/<example>`` the project's template directory: Django
    searches ``TEMPLATES["DIRS"]`` before the apps' templates."""
    shutil.copytree(EXAMPLES / example, tmp_path, dirs_exist_ok=True)
    engine = copy.deepcopy(settings.TEMPLATES[0])
    engine["DIRS"] = [tmp_path]
    settings.TEMPLATES = [engine]
    return tmp_path


def block_names(template_name: str) -> list[str]:
    nodelist = get_template(template_name).template.nodelist
    return [node.name for node in nodelist.get_nodes_by_type(BlockNode)]


@pytest.mark.parametrize("template_name", PAGES)
def test_each_page_renders_from_its_template_and_the_base(get_page, template_name):
    response = get_page(template_name)
    used = [t.name for t in response.templates]
    assert used[:3] == [template_name, "django_passkeys/page.html", "django_passkeys/base.html"]
    html = response.content.decode()
    assert html.count("<h1 ") == 1
    assert 'id="pk-title"' in html and 'aria-labelledby="pk-title"' in html
    assert 'role="status" aria-live="polite" data-pk-status' in html


def test_a_project_overrides_one_block_and_keeps_the_rest_of_the_page(get_page, settings, tmp_path):
    # The project's django_passkeys/login.html extends the app's template of the same name:
    # Django skips the template doing the extending when it looks the parent up.
    project_templates(settings, tmp_path, "one-block")
    html = get_page("django_passkeys/login.html").content.decode()
    assert '<h1 id="pk-title" class="pk-title">Welcome back</h1>' in html
    assert "Sign in with a passkey: your fingerprint" not in html  # the app's heading is gone
    assert 'autocomplete="username webauthn"' in html  # the other blocks are the app's
    assert 'href="/accounts/login/"' in html
    assert '<script id="passkeys-config" type="application/json">' in html


@pytest.mark.parametrize("template_name", PAGES)
def test_a_project_base_puts_every_page_in_the_site_layout(
    get_page, settings, tmp_path, template_name
):
    folder = project_templates(settings, tmp_path, "site-layout")
    (folder / "base.html").write_text(  # the site's own base template, other block names
        "<!doctype html><html lang='en'><head><title>{% block head_title %}{% endblock %} · Site"
        "</title>{% block extra_head %}{% endblock %}</head><body><header>Site header</header>"
        "<main>{% block body %}{% endblock %}</main></body></html>"
    )
    settings.PASSKEYS_BASE_TEMPLATE = "passkeys_base.html"  # the docs' adapter of those names
    html = get_page(template_name).content.decode()
    assert "<header>Site header</header>" in html
    assert re.search(r"<title>[^<]+ · Site</title>", html)  # the page's title block
    assert re.search(r'<main><div class="pk">.*<section class="pk-panel.*</div></main>', html, re.S)
    assert '<script src="/static/django_passkeys/passkeys.js" defer></script>' in html
    if template_name not in (
        "django_passkeys/sessions.html",
        "django_passkeys/totp.html",
        "django_passkeys/recovery_codes_new.html",
        "django_passkeys/security.html",
        "django_passkeys/cooldown.html",
        "django_passkeys/recover.html",
        "django_passkeys/recover_verify.html",
    ):
        assert '<script id="passkeys-config" type="application/json">' in html


@pytest.mark.parametrize("template_name", PAGES)
def test_a_project_adds_a_stylesheet_to_every_page(get_page, settings, tmp_path, template_name):
    project_templates(settings, tmp_path, "restyle")  # overrides django_passkeys/page.html
    html = get_page(template_name).content.decode()
    assert '<link rel="stylesheet" href="/static/django_passkeys/passkeys.css">' in html
    assert '<link rel="stylesheet" href="/static/css/passkeys-brand.css">' in html


def documented_blocks() -> dict[str, set[str]]:
    """The block rows of docs/templates.rst, under the heading naming each template."""
    parts = re.split(r"^``(django_passkeys/\w+\.html)``\n~+\n", DOCS.read_text(), flags=re.M)
    return {
        name: set(re.findall(r"^\s*\* - ``(passkeys_\w+|title|content)``$", body, flags=re.M))
        for name, body in zip(parts[1::2], parts[2::2], strict=True)
    }


def test_every_block_is_documented_under_its_template_and_nothing_else():
    documented = documented_blocks()
    base = block_names("django_passkeys/base.html") + block_names("django_passkeys/page.html")
    assert documented.pop("django_passkeys/base.html") == set(
        block_names("django_passkeys/base.html")
    )
    assert documented.pop("django_passkeys/page.html") == set(
        block_names("django_passkeys/page.html")
    )
    assert set(documented) == set(PAGES)
    for template in PAGES:
        blocks = block_names(template)
        assert len(blocks) == len(set(blocks)), f"{template} defines a block twice"
        assert documented[template] == set(blocks) - set(base), template
    for name in {name for template in PAGES for name in block_names(template)}:
        # Namespaced, so a project base extending the site's own base cannot collide with it.
        assert name.startswith("passkeys_") or name == "title", name


def test_every_page_template_is_listed_here_and_documented():
    pages = {
        f"django_passkeys/{path.name}"
        for path in (TEMPLATES / "django_passkeys").glob("*.html")
        if path.name not in ("base.html", "page.html")
    }
    assert pages == set(PAGES)  # a new page: add it here, to docs/templates.rst, and to e2e
    assert set(documented_blocks()) == {
        "django_passkeys/base.html",
        "django_passkeys/page.html",
        *PAGES,
    }


def test_every_partial_is_included_and_documented():
    sources = {
        path.name: path.read_text() for path in (TEMPLATES / "django_passkeys").rglob("*.html")
    }
    docs = DOCS.read_text()
    tags = (ROOT / "django_passkeys" / "templatetags" / "passkeys.py").read_text()
    partials = sorted(path.name for path in PARTIALS.glob("*.html"))
    assert partials
    for name in partials:
        include = f'{{% include "django_passkeys/partials/{name}"'
        uses = sum(source.count(include) for source in sources.values())
        uses += tags.count(f'inclusion_tag("django_passkeys/partials/{name}"')
        assert uses >= 1, f"{name} is not included anywhere: inline it, or remove it"
        # A partial is there to be used twice or overridden on its own: the docs list its
        # context, so a project overriding it knows what it gets.
        assert f"``django_passkeys/partials/{name}``" in docs, f"{name} is not documented"
