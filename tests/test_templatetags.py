from __future__ import annotations

from types import SimpleNamespace

from django.template import Context, Template


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
