"""Create an API token for an integrator user; the token is printed once, on the last line."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.platform.services import api_token_create


class Command(BaseCommand):
    help = "Create an API token for USERNAME and print it on the last line (only its digest is stored)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="A label to recognise the token by (e.g. 'shop backend')")
        parser.add_argument("--create-user", action="store_true", help="Create the user if it does not exist")

    def handle(self, *args, username: str, name: str, create_user: bool, **options) -> None:
        user_model = get_user_model()
        user = user_model.objects.filter(username=username).first()
        if user is None:
            if not create_user:
                raise CommandError(f"No user {username!r}; pass --create-user to create it.")
            user = user_model.objects.create_user(username=username)
            user.set_unusable_password()
            user.save(update_fields=["password"])
            self.stderr.write(f"Created user {username!r} (API only, no password).")
        token, raw = api_token_create(user=user, name=name)
        self.stderr.write(f"Token {token.prefix}… for {username!r} created; it is shown only once:")
        self.stdout.write(raw)
