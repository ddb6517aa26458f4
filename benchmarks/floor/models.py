"""The floor's one table: a credential's id (unique, so indexed), public key and counter."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class FloorCredential(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    credential_id = models.BinaryField(unique=True)
    public_key = models.BinaryField()
    sign_count = models.PositiveBigIntegerField(default=0)
