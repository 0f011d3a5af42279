from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from carely.orgs.roles import PlatformRole, Role
from carely.orgs.scoping import OrganisationScopedQuerySet


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        if not email:
            raise ValueError("A user needs an e-mail address")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        extra.setdefault("platform_role", PlatformRole.OPERATOR)
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A person who signs in. Accounts are personal: one human, one e-mail (SEC-1)."""

    email = models.EmailField(_("e-mail"), max_length=254, unique=True)
    full_name = models.CharField(_("full name"), max_length=150, blank=True)
    platform_role = models.CharField(
        max_length=20, choices=PlatformRole.choices, default=PlatformRole.NONE, blank=True
    )
    preferred_language = models.CharField(max_length=8, default="en")
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(
        default=False, help_text="May open the Django admin (platform operators only)."
    )
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(Lower("email"), name="user_email_ci_unique"),
        ]

    def __str__(self) -> str:
        return f"user #{self.pk}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.email = (self.email or "").strip().lower()
        super().save(*args, **kwargs)


class Organisation(models.Model):
    """A customer (clinic). Every personal-data row belongs to exactly one (TEN-1)."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=60, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    time_zone = models.CharField(max_length=64, default="Europe/Ljubljana")
    default_phone_region = models.CharField(max_length=2, default="SI")
    default_language = models.CharField(max_length=8, default="sl")
    require_mfa_for_all = models.BooleanField(
        default=False, help_text="Require a second factor from every member, not only admins."
    )
    # Suspension for non-payment (TEN-3): read access stays, writes and sends are refused.
    suspended_at = models.DateTimeField(null=True, blank=True)
    suspension_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering: ClassVar = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_suspended(self) -> bool:
        return self.suspended_at is not None


class Contract(models.Model):
    """The order form (TEN-2): one-year initial term, renewing by a year at each term end.

    Term arithmetic lives in ``carely.orgs.contracts`` so it can be tested as pure date maths.
    """

    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="contracts"
    )
    reference = models.CharField(max_length=60, blank=True)
    activation_date = models.DateField()
    non_renewal_notice_on = models.DateField(
        null=True, blank=True, help_text="Day a non-renewal notice was received, if any."
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = OrganisationScopedQuerySet.as_manager()

    class Meta:
        ordering: ClassVar = ["-activation_date"]

    def __str__(self) -> str:
        return f"contract #{self.pk} of organisation #{self.organisation_id}"

    def term_on(self, day: dt.date) -> tuple[dt.date, dt.date]:
        from carely.orgs.contracts import term_containing

        return term_containing(self.activation_date, day)

    def current_term_end(self, today: dt.date | None = None) -> dt.date:
        return self.term_on(today or timezone.localdate())[1]

    def last_notice_day(self, today: dt.date | None = None) -> dt.date:
        from carely.orgs.contracts import last_notice_day

        return last_notice_day(self.current_term_end(today))

    def ends_on(self) -> dt.date | None:
        """Last day of service when a non-renewal notice was given, else None (it renews)."""
        from carely.orgs.contracts import end_after_notice

        if self.non_renewal_notice_on is None:
            return None
        return end_after_notice(self.activation_date, self.non_renewal_notice_on)


class Membership(models.Model):
    """A user's role in one organisation. A person may belong to several (the switcher)."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.STAFF)
    created_at = models.DateTimeField(default=timezone.now)

    objects = OrganisationScopedQuerySet.as_manager()

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["user", "organisation"], name="membership_unique"),
        ]
        ordering: ClassVar = ["organisation__name"]

    def __str__(self) -> str:
        return f"{self.role} of organisation #{self.organisation_id}"
