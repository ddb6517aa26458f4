from __future__ import annotations

import uuid

from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """A custom user model with a UUID primary key, as many projects have."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
