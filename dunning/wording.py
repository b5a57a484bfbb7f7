"""Fixed customer-facing wording, per language: opt-out lines, letter labels, unsubscribe page.

These lines go to customers in the language of the message they close, which is not the
console user's language, so they live here as data next to the templates rather than in
the UI's gettext catalogue. Add a language by adding an entry; anything missing falls back
to English. The SMS lines keep to the GSM-7 alphabet (one accent too many and a message
costs 70 characters a segment instead of 160) and all contain STOP, the keyword Twilio
and integrations/twilio.py act on.
"""

WORDING: dict[str, dict[str, str]] = {
    "en": {
        "sms_opt_out": "Reply STOP to opt out.",
        "unsubscribe_line": "To stop receiving these e-mails, unsubscribe here: {url}",
        "unsubscribe_link": "Unsubscribe from these e-mails",
        "invoice": "Invoice",
        "due": "Due",
        "days_past_due": "Days past due",
        "open": "Open",
        "page": "page",
        "of": "of",
        "attn": "Attn:",
        "page_title": "Unsubscribe from e-mail reminders",
        "page_question": "Stop e-mails from {company} about your account to {email}?",
        "page_button": "Unsubscribe",
        "page_done": "Done: {email} will no longer receive these e-mails from {company}.",
        "page_already": "{email} is already unsubscribed from these e-mails.",
        "page_note": "This does not change any amount owed. We may still write to you by post.",
    },
    "de": {
        "sms_opt_out": "Antworten Sie STOP, um sich abzumelden.",
        "unsubscribe_line": "Sie möchten diese E-Mails nicht mehr erhalten? Hier abmelden: {url}",
        "unsubscribe_link": "Von diesen E-Mails abmelden",
        "invoice": "Rechnung",
        "due": "Fällig",
        "days_past_due": "Tage überfällig",
        "open": "Offen",
        "page": "Seite",
        "of": "von",
        "attn": "z. Hd.",
        "page_title": "Von E-Mail-Erinnerungen abmelden",
        "page_question": "Keine E-Mails von {company} zu Ihrem Konto mehr an {email} senden?",
        "page_button": "Abmelden",
        "page_done": "Erledigt: {email} erhält diese E-Mails von {company} nicht mehr.",
        "page_already": "{email} ist von diesen E-Mails bereits abgemeldet.",
        "page_note": "Offene Beträge bleiben davon unberührt. Wir können Ihnen weiter per Post "
        "schreiben.",
    },
    "fr": {
        "sms_opt_out": "Répondez STOP pour vous désinscrire.",
        "unsubscribe_line": "Pour ne plus recevoir ces e-mails, désinscrivez-vous ici : {url}",
        "unsubscribe_link": "Se désinscrire de ces e-mails",
        "invoice": "Facture",
        "due": "Échéance",
        "days_past_due": "Jours de retard",
        "open": "Solde",
        "page": "page",
        "of": "sur",
        "attn": "À l'attention de",
        "page_title": "Se désinscrire des rappels par e-mail",
        "page_question": "Ne plus recevoir d'e-mails de {company} concernant votre compte "
        "à {email} ?",
        "page_button": "Se désinscrire",
        "page_done": "C'est fait : {email} ne recevra plus ces e-mails de {company}.",
        "page_already": "{email} est déjà désinscrit de ces e-mails.",
        "page_note": "Cela ne modifie aucun montant dû. Nous pouvons encore vous écrire par "
        "courrier.",
    },
    "es": {
        "sms_opt_out": "Responda STOP para darse de baja.",
        "unsubscribe_line": "Para dejar de recibir estos correos, cancele la suscripción "
        "aquí: {url}",
        "unsubscribe_link": "Dejar de recibir estos correos",
        "invoice": "Factura",
        "due": "Vencimiento",
        "days_past_due": "Días de retraso",
        "open": "Pendiente",
        "page": "página",
        "of": "de",
        "attn": "A la atención de",
        "page_title": "Dejar de recibir recordatorios por correo",
        "page_question": "¿Dejar de enviar correos de {company} sobre su cuenta a {email}?",
        "page_button": "Darse de baja",
        "page_done": "Hecho: {email} ya no recibirá estos correos de {company}.",
        "page_already": "{email} ya se dio de baja de estos correos.",
        "page_note": "Esto no cambia ningún importe adeudado. Podemos seguir escribiéndole "
        "por correo postal.",
    },
}


def language_candidates(language: str) -> list[str]:
    """The language tag as given, then its primary subtag: "de-AT" -> ["de-at", "de"]."""
    tag = (language or "").strip().lower().replace("_", "-")
    primary = tag.split("-")[0]
    return [code for code in dict.fromkeys([tag, primary]) if code]


def wording(language: str) -> dict[str, str]:
    """Every line in this language, English where a line or the language is missing."""
    for code in language_candidates(language):
        if code in WORDING:
            return {**WORDING["en"], **WORDING[code]}
    return dict(WORDING["en"])
