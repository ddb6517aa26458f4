"""E-mails to every channel of an account when its security changes (DESIGN security rule 7).

:func:`notify` is called by the flows once a change is made: a passkey added, renamed, removed
or revoked, a second factor added or removed, recovery codes generated or used, a recovery
requested, completed, denied or failed, the password or the e-mail address changed. NIST SP
800-63B-4 §4.2 and §4.6 ask for a notice of every recovery and of every authenticator bound or
removed, to every address on file, so that a user whose account is taken over hears about it
where the attacker cannot hide it.

- The e-mail is sent once the transaction commits (``transaction.on_commit``): a change that
  rolls back tells nobody anything.
- Each :class:`Event` has exactly one public signal, sent once per occurrence so that a site
  adds SMS or push beside the e-mail (:data:`SIGNALS`). Most are sent by their flow; the others
  (:data:`SENT_BY_NOTIFY`) by :func:`notify`, after the commit too.
- An e-mail says what happened, when, from which browser and address, and what to do if it was
  not the user: a link to the security page built from ``PASSKEYS_BASE_URL`` (never from the
  request's ``Host``), never a link that signs in, never a token.
- A mail failure is logged, never raised into the request: the change is already committed.
- It goes through the site's default mailer (``MAILERS["default"]`` from Django 6.1,
  ``EMAIL_BACKEND`` before), where Django sends the app's other account mail (the recovery
  link, the password reset): one backend for all the addresses of a notice.

Recipients: ``PASSKEYS_NOTIFICATION_RECIPIENTS`` (a callable ``(user, event)`` or its dotted
path), by default the account's e-mail address; after an e-mail change the previous address is
always added, since that is where the account's owner still reads their mail.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import django
from django.conf import settings
from django.core import mail
from django.core.mail import EmailMultiAlternatives
from django.core.mail.backends.base import BaseEmailBackend
from django.db import transaction
from django.dispatch import Signal
from django.http import HttpRequest
from django.template.loader import render_to_string, select_template
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.module_loading import import_string

from . import redirects, signals, user_agents
from .audit import user_agent
from .ceremonies import base_url
from .clientip import client_ip
from .conf import conf

logger = logging.getLogger("django_passkeys")

__all__ = ["SENT_BY_NOTIFY", "SIGNALS", "Event", "default_recipients", "notify", "recipients"]

#: Where the e-mail templates are: ``<event>_subject.txt`` and ``<event>_message.txt`` for each
#: event, laid out by ``base.txt`` and ``base.html`` (or ``<event>.txt`` / ``<event>.html``).
TEMPLATE_DIR = "django_passkeys/email"

#: The browser description in an e-mail: enough to recognise a device, short enough to read.
BROWSER_MAX = 120


class Event(StrEnum):
    """What happened to an account; each value names its e-mail templates."""

    RECOVERY_REQUESTED = "recovery_requested"
    RECOVERY_COMPLETED = "recovery_completed"
    RECOVERY_DENIED = "recovery_denied"
    RECOVERY_FAILED = "recovery_failed"
    PASSKEY_ADDED = "passkey_added"
    PASSKEY_RENAMED = "passkey_renamed"
    PASSKEY_REMOVED = "passkey_removed"
    PASSKEY_REVOKED = "passkey_revoked"
    SECOND_FACTOR_ADDED = "second_factor_added"
    SECOND_FACTOR_REMOVED = "second_factor_removed"
    RECOVERY_CODES_GENERATED = "recovery_codes_generated"
    RECOVERY_CODE_USED = "recovery_code_used"
    PASSWORD_CHANGED = "password_changed"
    EMAIL_CHANGED = "email_changed"


#: The one public signal of each event (docs/notifications.rst has the table).
SIGNALS: dict[Event, Signal] = {
    Event.RECOVERY_REQUESTED: signals.recovery_requested,
    Event.RECOVERY_COMPLETED: signals.recovery_completed,
    Event.RECOVERY_DENIED: signals.recovery_denied,
    Event.RECOVERY_FAILED: signals.recovery_failed,
    Event.PASSKEY_ADDED: signals.passkey_registered,
    Event.PASSKEY_RENAMED: signals.passkey_renamed,
    # Removing is revoking by the owner: one signal, ``revoked_by`` tells them apart.
    Event.PASSKEY_REMOVED: signals.passkey_revoked,
    Event.PASSKEY_REVOKED: signals.passkey_revoked,
    Event.SECOND_FACTOR_ADDED: signals.second_factor_added,
    Event.SECOND_FACTOR_REMOVED: signals.second_factor_removed,
    Event.RECOVERY_CODES_GENERATED: signals.recovery_codes_generated,
    Event.RECOVERY_CODE_USED: signals.recovery_code_used,
    Event.PASSWORD_CHANGED: signals.password_changed,
    Event.EMAIL_CHANGED: signals.email_changed,
}

#: Events whose signal :func:`notify` sends; the flows send the others' themselves.
SENT_BY_NOTIFY: frozenset[Event] = frozenset(
    {
        Event.RECOVERY_REQUESTED,
        Event.RECOVERY_COMPLETED,
        Event.RECOVERY_DENIED,
        Event.RECOVERY_FAILED,
        Event.PASSKEY_RENAMED,
        Event.PASSWORD_CHANGED,
        Event.EMAIL_CHANGED,
    }
)


@dataclass(frozen=True)
class Origin:
    """Where a change came from, read when it happened (the request may be gone at commit)."""

    browser: str
    ip_address: str | None


def notify(event: Event, user: Any, *, request: HttpRequest | None = None, **details: Any) -> None:
    """Tell every channel of ``user`` about ``event``, once the current transaction commits.

    ``details`` are the templates' context (``credential=``, ``factor=``,
    ``recovery_request=``, ``previous_email=``...) and the keyword arguments of the signal, when
    this function sends it (:data:`SENT_BY_NOTIFY`). Never raises for mail errors, and makes no
    database query before the commit.
    """
    event = Event(event)
    when = timezone.now()
    origin = _origin(request, user)
    # Read now, while the request is there: on a multi-tenant site, its tenant's address.
    site = base_url(request)

    def deliver() -> None:
        if event in SENT_BY_NOTIFY:
            _send_signal(event, user, request, details)
        try:
            _send_mail(event, user, when, origin, details, site=site)
        except Exception:
            # The change is committed: a mail server down must not turn it into a 500.
            logger.exception("passkey notification %s not sent", event.value)

    transaction.on_commit(deliver, robust=True)


def _origin(request: HttpRequest | None, user: Any) -> Origin | None:
    """The browser and IP address of the person who made the change, when it was ``user``.

    A change made by someone else signed in (an administrator revoking a passkey) does not
    disclose their browser and address to the account's owner; a change from a signed-out
    browser (a recovery) does: that is the attacker's, if anyone's.
    """
    if request is None:
        return None
    actor = getattr(request, "user", None)
    if getattr(actor, "is_authenticated", False) and getattr(actor, "pk", None) != user.pk:
        return None
    return Origin(browser=_browser(user_agent(request)), ip_address=client_ip(request))


def _browser(agent: str) -> str:
    """The browser as a person reads it ("Firefox on Linux"); the header, cut, if unknown."""
    parsed = user_agents.parse(agent)
    if parsed.browser or parsed.system:
        return str(parsed)
    return agent[:BROWSER_MAX]


def _send_signal(
    event: Event, user: Any, request: HttpRequest | None, details: dict[str, Any]
) -> None:
    responses = SIGNALS[event].send_robust(sender=type(user), request=request, user=user, **details)
    for receiver, response in responses:
        if isinstance(response, Exception):
            logger.error(
                "passkey signal %s: receiver %r failed",
                event.value,
                receiver,
                exc_info=response,
            )


# ---------------------------------------------------------------------------------------------
# Recipients
# ---------------------------------------------------------------------------------------------


def default_recipients(user: Any, event: Event) -> list[str]:
    """The account's e-mail address (the user model's ``EMAIL_FIELD``), if it has one."""
    address = getattr(user, user.get_email_field_name(), "")
    return [address] if address else []


def recipients(user: Any, event: Event, **details: Any) -> list[str]:
    """Who hears about ``event``: the recipients hook's addresses, deduplicated, none empty.

    After an e-mail change the previous address (``previous_email``) is added whatever the
    hook says: the hook does not see it, and it is where the owner of a taken account still is.
    """
    hook = conf.PASSKEYS_NOTIFICATION_RECIPIENTS
    if hook is None:
        hook = default_recipients
    elif isinstance(hook, str):
        hook = import_string(hook)
    addresses = list(hook(user, event))
    if event is Event.EMAIL_CHANGED:
        addresses.append(details.get("previous_email"))
    return _unique(addresses)


def _unique(addresses: Iterable[Any]) -> list[str]:
    seen: set[str] = set()
    unique = []
    for address in addresses:
        if not isinstance(address, str) or not address.strip():
            continue
        address = address.strip()
        # Domains are case-insensitive, and no real mailbox differs from another by case alone.
        if address.casefold() not in seen:
            seen.add(address.casefold())
            unique.append(address)
    return unique


# ---------------------------------------------------------------------------------------------
# The e-mail
# ---------------------------------------------------------------------------------------------


def _absolute(url: str, site: str | None = None) -> str:
    return url if "://" in url else (conf.PASSKEYS_BASE_URL if site is None else site) + url


def security_url(site: str | None = None) -> str | None:
    """The security page, from ``PASSKEYS_BASE_URL`` (security rule 3); ``None`` if unrouted.

    ``site``: the base URL to use instead (:func:`django_passkeys.ceremonies.base_url`).
    """
    try:
        return _absolute(reverse("django_passkeys:security"), site)
    except NoReverseMatch:
        return None


def support_url(site: str | None = None) -> str | None:
    """``PASSKEYS_SUPPORT_URL`` as an absolute URL, or ``None``."""
    url = redirects.support_url()
    return _absolute(url, site) if url is not None else None


def context_for(
    event: Event,
    user: Any,
    when: datetime,
    origin: Origin | None,
    details: dict[str, Any],
    *,
    site: str | None = None,
) -> dict[str, Any]:
    """What the e-mail templates get: the ``details``, then the app's own names.

    ``site``: the base URL of the links, ``PASSKEYS_BASE_URL`` by default.
    """
    return {
        **details,
        "event": event.value,
        "user": user,
        "account_email": getattr(user, user.get_email_field_name(), ""),
        "site_name": conf.PASSKEYS_RP_NAME,
        "when": when,
        "origin": origin,
        "security_url": security_url(site),
        "support_url": support_url(site),
        "message_template": f"{TEMPLATE_DIR}/{event.value}_message.txt",
    }


def render(
    event: Event,
    user: Any,
    *,
    when: datetime | None = None,
    origin: Origin | None = None,
    site: str | None = None,
    **details: Any,
) -> tuple[str, str, str]:
    """The ``(subject, text, html)`` of ``event``'s e-mail (what :func:`notify` sends)."""
    context = context_for(event, user, when or timezone.now(), origin, details, site=site)
    # A subject is one header line: a template's line breaks must not start another header.
    subject = " ".join(
        render_to_string(f"{TEMPLATE_DIR}/{event.value}_subject.txt", context).split()
    )
    text = select_template([f"{TEMPLATE_DIR}/{event.value}.txt", f"{TEMPLATE_DIR}/base.txt"])
    html = select_template([f"{TEMPLATE_DIR}/{event.value}.html", f"{TEMPLATE_DIR}/base.html"])
    return subject, text.render(context), html.render(context)


def _send_mail(
    event: Event,
    user: Any,
    when: datetime,
    origin: Origin | None,
    details: dict[str, Any],
    *,
    site: str | None = None,
) -> None:
    addresses = recipients(user, event, **details)
    if not addresses:
        logger.info("passkey notification %s: the account has no address", event.value)
        return
    subject, text, html = render(event, user, when=when, origin=origin, site=site, **details)
    mailer = _default_mailer()
    # One message per address: the old and the new address of an e-mail change do not see
    # each other, and one refused address does not stop the others.
    for address in addresses:
        message = EmailMultiAlternatives(subject, text, settings.DEFAULT_FROM_EMAIL, [address])
        message.attach_alternative(html, "text/html")
        try:
            mailer.send_messages([message])
        except Exception as exc:
            # The kind of failure, not its text: a refused recipient's error carries the
            # address, and logs carry no addresses (security rule 8).
            logger.error(
                "passkey notification %s not sent to one address: %s",
                event.value,
                type(exc).__name__,
            )


def _default_mailer() -> BaseEmailBackend:
    """The site's default mailer: one backend instance, reused for every address of a notice.

    Django 6.1 names its mailers in ``MAILERS`` and deprecates ``get_connection()``, the
    ``connection`` argument of a message and ``EMAIL_BACKEND`` for ``mail.mailers``; before
    6.1, ``get_connection()`` is the only way to one backend for several messages. Sending with
    ``send_messages()`` on it is what ``EmailMessage.send()`` does, on every version.
    """
    if django.VERSION >= (6, 1):
        return mail.mailers.default
    return mail.get_connection()
