"""Install gallery templates as draft workflows (idempotent: a template installed under its name is skipped)."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from apps.automations import gallery


class Command(BaseCommand):
    help = "Install template-gallery workflows (drafts unless --activate)."

    def add_arguments(self, parser):
        parser.add_argument("--key", action="append", dest="keys", help="Template key (repeatable); default: all.")
        parser.add_argument("--if-empty", action="store_true", help="Do nothing when any workflow exists.")
        parser.add_argument("--activate", action="store_true", help="Activate the installed workflows.")
        parser.add_argument("--list", action="store_true", dest="show_list", help="List the templates and exit.")

    def handle(self, *args, keys=None, if_empty=False, activate=False, show_list=False, **options):
        if show_list:
            for spec in gallery.template_list():
                self.stdout.write(f"{spec.key:28} {spec.trigger:24} {spec.name}")
            return
        from apps.automations.models import Workflow

        if if_empty and Workflow.objects.exists():
            self.stdout.write("Workflows exist already; nothing installed.")
            return
        keys = keys or [spec.key for spec in gallery.template_list()]
        unknown = [key for key in keys if key not in gallery.TEMPLATES]
        if unknown:
            raise CommandError(f"Unknown template(s): {', '.join(unknown)}")
        installed = skipped = 0
        for key in keys:
            spec = gallery.TEMPLATES[key]
            if Workflow.objects.filter(name=spec.name).exists():
                skipped += 1
                continue
            try:
                workflow = gallery.template_install(key=key, params={}, user=None, activate=activate)
            except ValidationError as error:
                raise CommandError(f"{key}: {error}") from error
            installed += 1
            self.stdout.write(f"installed {key} as workflow #{workflow.pk} ({workflow.status})")
        self.stdout.write(self.style.SUCCESS(f"{installed} installed, {skipped} already present"))
