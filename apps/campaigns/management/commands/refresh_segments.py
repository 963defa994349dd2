from django.core.management.base import BaseCommand

from apps.campaigns import services
from apps.campaigns.models import Segment


class Command(BaseCommand):
    help = "Refresh the members of every active segment (or of the named ones), set-based."

    def add_arguments(self, parser):
        parser.add_argument("names", nargs="*", help="segment names (default: every active segment)")

    def handle(self, *args, names, **options):
        segments = Segment.objects.filter(name__in=names) if names else Segment.objects.filter(is_active=True)
        for segment in segments.order_by("pk"):
            segment = services.segment_refresh(segment=segment)
            self.stdout.write(f"{segment.name}: {segment.member_count} members")
