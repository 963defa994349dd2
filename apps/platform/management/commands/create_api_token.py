"""Create a scoped API token for a user; the token is printed once, on the last line."""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from apps.platform.permissions import SCOPES
from apps.platform.roles import ROLES
from apps.platform.services import api_token_create


class Command(BaseCommand):
    help = (
        "Create an API token for USERNAME with one or more --scope and print it on the last line (only its "
        "digest is stored). The token acts with its scopes AND its user's permissions (roles)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="A label to recognise the token by (e.g. 'shop backend')")
        parser.add_argument(
            "--scope", action="append", choices=SCOPES, default=[], dest="scopes", help="Repeat for several scopes"
        )
        parser.add_argument("--expires-in-days", type=int, default=None, help="Default: the token never expires")
        parser.add_argument("--create-user", action="store_true", help="Create the user if it does not exist")
        parser.add_argument(
            "--role", action="append", choices=sorted(ROLES), default=[], dest="roles", help="Add the user to a role"
        )

    def handle(
        self,
        *args,
        username: str,
        name: str,
        scopes: list[str],
        expires_in_days: int | None,
        create_user: bool,
        roles: list[str],
        **options,
    ) -> None:
        user_model = get_user_model()
        user = user_model.objects.filter(username=username).first()
        if user is None and not create_user:
            raise CommandError(f"No user {username!r}; pass --create-user to create it.")
        if not scopes:
            raise CommandError(f"Pass at least one --scope ({', '.join(SCOPES)}).")
        if expires_in_days is not None and expires_in_days < 1:
            raise CommandError("--expires-in-days must be at least 1.")
        if user is None:
            user = user_model.objects.create_user(username=username)
            user.set_unusable_password()
            user.save(update_fields=["password"])
            self.stderr.write(f"Created user {username!r} (API only, no password).")
        for role in roles:
            user.groups.add(Group.objects.get(name=role))
        if not user.is_superuser and not user.get_all_permissions():
            self.stderr.write(
                f"Warning: {username!r} has no role or permission yet, so the token can do nothing "
                "(pass --role, or add the user to a role in the console)."
            )
        expires_at = timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None
        token, raw = api_token_create(user=user, name=name, scopes=scopes, expires_at=expires_at)
        until = f", expires {expires_at:%Y-%m-%d %H:%M} UTC" if expires_at else ""
        self.stderr.write(
            f"Token {token.prefix}… for {username!r} (scopes: {', '.join(token.scopes)}{until}) created; "
            "it is shown only once:"
        )
        self.stdout.write(raw)
