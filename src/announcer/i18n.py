"""The few words announcer writes itself, in the series language.

Unknown languages fall back to English. Dates are formatted with Babel by the
adapters; this module holds only labels.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import lru_cache

LABELS: dict[str, dict[str, str]] = {
    "en": {
        # email (announcer.mail): intros, subjects and footers of the four kinds
        "email_intro_announcement": "You are invited to the next event of {series}.",
        "email_intro_reminder": "A reminder: this event of {series} is coming up soon.",
        "email_intro_update": (
            "This event has changed. The details below are up to date; "
            "the attached calendar file updates your calendar."
        ),
        "email_intro_cancellation": (
            "This event has been cancelled. The attached calendar file removes it "
            "from your calendar."
        ),
        "email_subject_announcement": "{title} ({date})",
        "email_subject_reminder": "Reminder: {title} ({date})",
        "email_subject_update": "Changed: {title} ({date})",
        "email_subject_cancellation": "Cancelled: {title} ({date})",
        "email_footer": "You receive this email as a subscriber to {series}.",
        "email_unsubscribe": "Unsubscribe",
        "cancelled": "Cancelled",
        "tentative": "Tentative",
        "speaker": "Speaker",
        "speakers": "Speakers",
        "join_online": "Join online",
        "more_info": "More information",
        "event_page": "Event page",
        "location": "Location",
        "abstract": "Abstract",
        "past_event": "Past event: this event has already taken place",
        "upcoming": "Upcoming events",
        "past": "Past events",
        "add_to_calendar": "Add to calendar",
        "subscribe": "Subscribe to this series",
        "all_day": "All day",
        "online": "Online",
        "tags": "Tags",
        "no_events": "No events yet.",
        "when": "When",
        "cancelled_notice": "This event has been cancelled.",
        "tentative_notice": "The date or details of this event may still change.",
        "past_short": "Past",
        "your_time": "In your timezone",
        "download_ics": "Download .ics (Apple Calendar, Outlook, Thunderbird)",
        "download_series_ics": "Download .ics with every date",
        "google_calendar": "Google Calendar",
        "outlook_365": "Outlook (Microsoft 365)",
        "outlook_com": "Outlook.com",
        "subscribe_app": "Subscribe in your calendar app",
        "calendar_address": "Calendar address (https)",
        "subscribe_all": "Subscribe to all events",
        "subscribe_tag": "Subscribe to this tag",
        "feed_atom": "Atom feed",
        "feed_rss": "RSS feed",
        "series_list": "Series",
        "tagged": "Events tagged “{tag}”",
        "no_upcoming": "No upcoming events.",
        "feed_entry": "{date} — {speakers}: {title}",
        "colon": ":",
    },
    "fr": {
        # email (announcer.mail)
        "email_intro_announcement": (
            "Vous êtes invité·e au prochain événement de la série {series}."
        ),
        "email_intro_reminder": "Rappel\u00a0: cet événement de la série {series} approche.",
        "email_intro_update": (
            "Cet événement a changé. Les informations ci-dessous sont à jour\u00a0; "
            "le fichier d'agenda joint met à jour votre agenda."
        ),
        "email_intro_cancellation": (
            "Cet événement est annulé. Le fichier d'agenda joint le retire de votre agenda."
        ),
        "email_subject_announcement": "{title} ({date})",
        "email_subject_reminder": "Rappel\u00a0: {title} ({date})",
        "email_subject_update": "Modifié\u00a0: {title} ({date})",
        "email_subject_cancellation": "Annulé\u00a0: {title} ({date})",
        "email_footer": "Vous recevez ce courriel en tant qu'abonné·e à la série {series}.",
        "email_unsubscribe": "Se désabonner",
        "cancelled": "Annulé",
        "tentative": "Provisoire",
        "speaker": "Intervenant·e",
        "speakers": "Intervenant·e·s",
        "join_online": "Participer en ligne",
        "more_info": "Plus d'informations",
        "event_page": "Page de l'événement",
        "location": "Lieu",
        "abstract": "Résumé",
        "past_event": "Événement passé : cet événement a déjà eu lieu",
        "upcoming": "Événements à venir",
        "past": "Événements passés",
        "add_to_calendar": "Ajouter à l'agenda",
        "subscribe": "S'abonner à cette série",
        "all_day": "Toute la journée",
        "online": "En ligne",
        "tags": "Mots-clés",
        "no_events": "Aucun événement pour l'instant.",
        "when": "Quand",
        "cancelled_notice": "Cet événement a été annulé.",
        "tentative_notice": "La date ou les détails de cet événement peuvent encore changer.",
        "past_short": "Passé",
        "your_time": "Dans votre fuseau horaire",
        "download_ics": "Télécharger le fichier .ics (Calendrier Apple, Outlook, Thunderbird)",
        "download_series_ics": "Télécharger le fichier .ics avec toutes les dates",
        "google_calendar": "Google Agenda",
        "outlook_365": "Outlook (Microsoft 365)",
        "outlook_com": "Outlook.com",
        "subscribe_app": "S'abonner dans votre application d'agenda",
        "calendar_address": "Adresse de l'agenda (https)",
        "subscribe_all": "S'abonner à tous les événements",
        "subscribe_tag": "S'abonner à ce mot-clé",
        "feed_atom": "Fil Atom",
        "feed_rss": "Fil RSS",
        "series_list": "Séries",
        "tagged": "Événements avec le mot-clé « {tag} »",
        "no_upcoming": "Aucun événement à venir.",
        "feed_entry": "{date} — {speakers}\u00a0: {title}",
        "colon": "\u00a0:",
    },
}


class Labels(Mapping[str, str]):
    """Read-only labels, read as ``words["when"]`` in code and ``words.when`` in templates.

    Jinja tries an attribute before an item; on a plain mapping each of the
    twenty-odd labels a page shows cost a raised and caught AttributeError.
    """

    __slots__ = ("_entries",)
    _entries: dict[str, str]

    def __init__(self, entries: Mapping[str, str]) -> None:
        object.__setattr__(self, "_entries", dict(entries))

    def __getattr__(self, name: str) -> str:
        try:
            return self.__getitem__(name)
        except KeyError:
            raise AttributeError(name) from None

    def __reduce__(self) -> tuple[type[Labels], tuple[dict[str, str]]]:
        return Labels, (self._entries,)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"labels are read-only: {name}")

    def __getitem__(self, key: str) -> str:
        return self._entries[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


@lru_cache(maxsize=64)
def labels(language: str) -> Labels:
    """Labels for ``language`` (``fr-CA`` uses ``fr``), English for anything else.

    Read-only and shared: every page, feed entry and email asks for them.
    """
    base = language.replace("_", "-").split("-")[0].lower()
    return Labels({**LABELS["en"], **LABELS.get(base, {})})


def label(language: str, key: str) -> str:
    return labels(language)[key]
