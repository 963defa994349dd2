"""
The marketer console's pages that read every app (the top layer): the home overview, the customer 360°
page and readable references (`bulk_run:12` -> a link to the bulk run). The shell itself (site, navigation,
base template) is in `apps/platform/console`.
"""
