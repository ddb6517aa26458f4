"""Bind each credential to its owner's WebAuthn user handle (security rule 10).

Existing rows get the handle of the user who owns them now; an owner without a handle gets one,
as ``user_handle_for`` would create it at the next ceremony.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations, models


def bind_to_owner(apps: Any, schema_editor: Any) -> None:
    Credential = apps.get_model("django_passkeys", "Credential")
    UserHandle = apps.get_model("django_passkeys", "UserHandle")
    db = schema_editor.connection.alias
    owners = Credential.objects.using(db).order_by().values_list("user_id", flat=True).distinct()
    for user_id in owners.iterator():
        # The field's default (new_user_handle) gives a new owner 64 random bytes.
        row, _ = UserHandle.objects.using(db).get_or_create(user_id=user_id)
        Credential.objects.using(db).filter(user_id=user_id).update(user_handle=bytes(row.handle))


class Migration(migrations.Migration):
    dependencies = [
        ("django_passkeys", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="credential",
            name="user_handle",
            field=models.BinaryField(default=b"", max_length=64),
            preserve_default=False,
        ),
        migrations.RunPython(bind_to_owner, migrations.RunPython.noop, elidable=False),
    ]
