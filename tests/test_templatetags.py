from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse
from django.template import Context, Template, TemplateSyntaxError
from django.urls import include, path


def render(source: str, **context) -> str:
    return Template("{% load passkeys %}" + source).render(Context(context))


def test_script_tag_is_deferred_and_external():
    assert render("{% passkeys_js %}") == (
        '<script src="/static/django_passkeys/passkeys.js" defer></script>'
    )


def test_stylesheet_tag():
    assert render("{% passkeys_css %}") == (
        '<link rel="stylesheet" href="/static/django_passkeys/passkeys.css">'
    )


def test_tags_carry_the_request_csp_nonce():
    request = SimpleNamespace(csp_nonce="abc123")
    assert ' nonce="abc123"' in render("{% passkeys_js %}", request=request)
    assert ' nonce="abc123"' in render("{% passkeys_css %}", request=request)


def test_tags_prefer_the_csp_nonce_context_variable():
    request = SimpleNamespace(csp_nonce="from-request")
    html = render("{% passkeys_js %}", csp_nonce="from-context", request=request)
    assert 'nonce="from-context"' in html


def test_nonce_is_escaped():
    html = render("{% passkeys_js %}", csp_nonce='"><script>')
    assert "<script>" not in html.replace("<script src", "")


def test_provider_filter():
    html = render(
        "{% with p=aaguid|passkey_provider %}{{ p.name|default:'unknown' }}{% endwith %}",
        aaguid="ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4",
    )
    assert html == "Google Password Manager"
    assert render("{{ aaguid|passkey_provider|default:'unknown' }}", aaguid="") == "unknown"


# -- the site's home link, passkey_login's request, the base template tag -------------------------


def home(request):
    return HttpResponse("home")


#: A project with a home page at "/" (the test project has none).
urlpatterns = [path("", home), path("auth/passkey/", include("django_passkeys.urls"))]


def test_home_link_is_the_projects_home_page_when_it_has_one(settings):
    settings.PASSKEYS_RP_NAME = "Example"
    html = "{% passkeys_home as home %}{{ home.name }} {{ home.url }}"
    assert render(html) == "Example /auth/passkey/security/"  # no page at "/"
    settings.ROOT_URLCONF = __name__
    assert render(html) == "Example /"


def test_passkey_login_without_the_request_says_how_to_render_the_page():
    with pytest.raises(ImproperlyConfigured, match="needs the request"):
        render("{% passkey_login %}")


def test_passkeys_extends_base_takes_no_arguments():
    with pytest.raises(TemplateSyntaxError, match="takes no arguments"):
        render('{% passkeys_extends_base "other.html" %}')


def test_passkeys_extends_base_cannot_be_combined_with_extends():
    with pytest.raises(TemplateSyntaxError, match="cannot be used with extends"):
        render('{% passkeys_extends_base %}{% extends "other.html" %}')


def test_a_template_using_passkeys_extends_base_renders_on_its_own(settings, tmp_path):
    # Rendered directly, not extended by a page: its blocks fill the base template's.
    (tmp_path / "site_base.html").write_text("<main>{% block content %}{% endblock %}</main>")
    engine = copy.deepcopy(settings.TEMPLATES[0])
    engine["DIRS"] = [str(tmp_path)]
    settings.TEMPLATES = [engine]
    settings.PASSKEYS_BASE_TEMPLATE = "site_base.html"
    source = "{% passkeys_extends_base %}{% block content %}page{% endblock %}"
    assert render(source) == "<main>page</main>"
