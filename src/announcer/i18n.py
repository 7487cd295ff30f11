"""The few words announcer writes itself, in the series language.

Unknown languages fall back to English. Dates are formatted with Babel by the
adapters; this module holds only labels.
"""

from __future__ import annotations

LABELS: dict[str, dict[str, str]] = {
    "en": {
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
    },
    "fr": {
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
    },
}


def labels(language: str) -> dict[str, str]:
    """Labels for ``language`` (``fr-CA`` uses ``fr``), English for anything else."""
    base = language.replace("_", "-").split("-")[0].lower()
    return {**LABELS["en"], **LABELS.get(base, {})}


def label(language: str, key: str) -> str:
    return labels(language)[key]
