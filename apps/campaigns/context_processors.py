"""Template context for admin pages: the global kill switch, so every marketer page shows a banner while it is on."""

from typing import Any

from django.http import HttpRequest


def promotions_kill_switch(request: HttpRequest) -> dict[str, Any]:
    if not request.path.startswith("/admin/") or not getattr(request.user, "is_authenticated", False):
        return {}
    from .promotions.models import PromotionSettings

    current = PromotionSettings.objects.filter(kill_switch=True).only("kill_switch_at", "kill_switch_reason").first()
    return {"promotions_kill_switch": current}
