"""Everything the browser tests know about the console's pages, in one place.

Other work changes the worklist, the notice pages and the intake pages: when a page moves,
adjust it here, not in the tests. Prefer what is meant to stay: URLs, form field names,
button texts. URL templates take the row's id as `{id}`.
"""

# Login: django-two-factor-auth's wizard (password step, then the TOTP step).
LOGIN_URL = "/account/login/"
LOGIN_USERNAME = "auth-username"
LOGIN_PASSWORD = "auth-password"
LOGIN_TOKEN = "token-otp_token"
LOGIN_NEXT = "button.btn-primary[type=submit]"  # the wizard's "Next"
LOGGED_IN_MARK = "#user-tools"  # the admin's header with "Log out"

# Any admin form: the main submit buttons.
SUBMIT_APPLY = "input[type=submit][name=apply]"  # customer actions and decision pages
SUBMIT_SAVE = "input[type=submit][name=_save]"  # a change form's "Save"
# A done action says so in the message list (some actions at the success level, some info).
MESSAGE_DONE = "ul.messagelist li.success, ul.messagelist li.info"
MESSAGE_ERROR = "ul.messagelist li.error"
ERRORS = ".errornote, .errorlist"

# Agent: the worklist, a customer, a call, a promise.
WORKLIST_URL = "/admin/cases/task/worklist/"
CUSTOMER_URL = "/admin/accounts/customer/{id}/change/"
LINK_TO_CUSTOMER = "a[href*='/admin/accounts/customer/{id}/change/']"
LINK_LOG_CALL = "a[href*='/admin/accounts/customer/{id}/call/']"
CALL_OUTCOME = "outcome"
CALL_TEXT = "text"
LINK_RECORD_PROMISE = "a[href*='/admin/cases/promisetopay/record/{id}/']"
PROMISE_INVOICES_FROM = "id_invoices_from"  # the two-box widget's left box
PROMISE_INVOICES_CHOOSE = "id_invoices_add"  # its "Choose" arrow
PROMISE_AMOUNT = "amount"
PROMISE_DATE = "promised_on"
PROMISE_CHANNEL = "channel"

# Manager: a payment plan, a notice, the aging report.
PLANS_PROPOSED_URL = "/admin/cases/paymentplan/?status=proposed"
LINK_TO_PLAN = "a[href*='/admin/cases/paymentplan/{id}/change/']"
LINK_APPROVE_PLAN = "a[href*='/admin/cases/paymentplan/{id}/approve/']"
NOTICES_AWAITING_URL = "/admin/dunning/notice/?status__exact=awaiting_approval"
LINK_EDIT_NOTICE = "a[href*='/admin/dunning/notice/{id}/edit/']"
NOTICE_SUBJECT = "subject"
NOTICE_BODY = "body_text"
NOTICE_REASON = "reason"
NOTICE_SAVE_AND_APPROVE = "input[type=submit][name=_approve], button[name=_approve]"
AGING_URL = "/admin/reporting/aging/"
AGING_DOWNLOADS = ".aging-downloads a"
AGING_PDF_LABEL = "PDF"

# Finance: a spreadsheet through preview and confirm, then a rejected row corrected.
IMPORT_INVOICES_URL = "/admin/integrations/intakebatch/import/"
IMPORT_FILE = "file"
IMPORT_PREVIEW = "input[type=submit][name=_preview]"
IMPORT_CONFIRM = "input[type=submit][name=_confirm]"
REJECTIONS_OF_BATCH_URL = "/admin/integrations/rejection/?batch__id__exact={id}"
REJECTION_URL = "/admin/integrations/rejection/{id}/change/"
LINK_RETRY = "a[href*='/admin/integrations/rejection/{id}/retry/']"
RETRY_SUBMIT = "input[type=submit]"
