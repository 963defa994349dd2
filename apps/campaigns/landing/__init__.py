"""
Landing pages and sign-up forms (issue 17): pages built in the console from a template and typed blocks
(`blocks.py`, validated on save by `services.landing_page_save`), draft / published with immutable versions,
served at `/p/<slug>/`; a form submission creates or identifies the customer, asks for double opt-in and, on
confirmation, joins the program, publishes a voucher and records the referral (`services.form_submit`,
`services.form_submission_confirm`). Models belong to the campaigns app (its migrations).
"""
