"""
The marketer console's shell: the admin site class (product name, home, "System" page), its navigation by
task and the admin app config that installs the site. It sits in the bottom app so every app's admin pages
get it; it imports no other app (pages are named by URL name and permission strings, as the admin does).
"""
