"""The customer cockpit (reached by signed link)."""

urlpatterns: list = []
