"""Non-API pages of this app (admin custom pages, customer-facing pages)."""

urlpatterns: list = []
