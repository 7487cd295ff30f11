"""Generate a deterministic, realistic announcer project tree for benchmarks.

Usage: python benchmarks/generate.py OUT_DIR --series N --events M [--seed 1]

The same arguments always give a byte-identical tree: every choice comes from
``random.Random(seed)`` and nothing reads the clock.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

BASE_URL = "https://events.example.org/"
TIMEZONES = ("America/Toronto", "Europe/Paris", "Europe/London", "UTC")
FIRST_DAY = date(2024, 1, 8)
SPAN_DAYS = 3 * 365
MAX_ID = 80

TAGS = (
    "public-policy", "governance", "non-profits", "co-production", "health",
    "education", "housing", "climate", "energy", "transport", "migration",
    "labour", "data", "ai", "privacy", "elections", "indigenous-rights",
    "urban", "rural", "fiscal-policy", "trade", "security", "law", "ethics",
    "history", "methods", "gender", "inequality", "digital-government", "covid-19",
)

EN_SERIES = (
    ("Public Policy Research Seminars", "Talks on public services, non-profits and governance."),
    ("Data and Society Colloquium", "How data, algorithms and institutions shape each other."),
    ("Urban Futures Lecture Series", "Cities, housing and transport, from research to practice."),
    ("Climate Governance Workshop", "Work in progress on climate and energy policy."),
    ("Health Systems Seminar", "Evidence and practice in public health systems."),
    ("Methods Brown Bag", "Informal lunchtime talks on research methods."),
)
FR_SERIES = (
    ("Séminaire de politiques publiques",
     "Exposés sur l'État, les services publics et la société."),
    ("Rencontres « Numérique et société »", "Données, algorithmes et démocratie : débats ouverts."),
    ("Atelier d'histoire économique", "Travaux en cours sur l'histoire des marchés et des États."),
    ("Cycle de conférences sur la ville", "Logement, mobilités et écologie urbaine."),
)

EN_WORDS = {
    "lead": (
        "Rules, practices and narratives", "Beyond the state", "Counting what counts",
        "Trust and its discontents", "Who decides?", "Small data, big questions",
        "After the pandemic", "Learning from failure", "The politics of delivery",
        "Rethinking accountability",
    ),
    "topic": (
        "non-profit co-production", "municipal housing policy", "algorithmic decision-making",
        "carbon pricing", "community health centres", "open government data",
        "electoral reform", "public sector innovation", "cross-border labour markets",
        "Indigenous self-government", "school choice", "regional transit",
    ),
    "frame": (
        "evidence from Canada", "a comparative study", "lessons from ten cities",
        "a field experiment", "an archival history", "what practitioners know",
        "a mixed-methods approach", "the view from the front line",
    ),
}
FR_WORDS = {
    "lead": (
        "Règles, pratiques et récits", "Au-delà de l'État", "Compter ce qui compte",
        "La confiance à l'épreuve", "Qui décide ?", "Après la crise sanitaire",
        "Apprendre de l'échec", "La fabrique des politiques publiques",
    ),
    "topic": (
        "la coproduction des services publics", "le logement social à Montréal",
        "les décisions algorithmiques", "la tarification du carbone",
        "les centres de santé communautaires", "l'ouverture des données publiques",
        "la réforme électorale", "l'économie sociale et solidaire",
        "les mobilités régionales", "l'école et ses inégalités",
    ),
    "frame": (
        "une étude comparée", "l'expérience québécoise", "regards croisés France-Québec",
        "une enquête de terrain", "une histoire des archives", "ce que savent les praticiens",
    ),
}

EN_SENTENCES = (
    "This talk examines how {topic} has changed over the past two decades.",
    "Drawing on interviews with more than forty practitioners, it asks who benefits.",
    "The argument is that *institutional design* matters more than funding levels.",
    "We combine administrative records with a survey of **front-line staff**.",
    "Early findings suggest that informal practices fill gaps left by formal rules.",
    "The second part turns to the narratives officials use to justify reform.",
    "Comparisons with other jurisdictions show both convergence and surprising divergence.",
    "The speaker will also discuss the limits of the data and what remains unknown.",
    "Participants are encouraged to read the working paper in advance.",
    "Implications for {topic} are discussed, with attention to equity and trust.",
    "The project is a collaboration between university researchers and community partners.",
    "A short response from a discussant will be followed by open questions.",
)
FR_SENTENCES = (
    "Cette intervention examine l'évolution de {topic} depuis une vingtaine d'années.",
    "À partir d'entretiens menés auprès de praticiens, elle interroge les bénéficiaires réels.",
    "L'hypothèse est que *l'architecture institutionnelle* compte davantage que le budget.",
    "Nous croisons des données administratives et une enquête auprès des **agents de terrain**.",
    "Les premiers résultats montrent que des pratiques informelles comblent les lacunes.",
    "La seconde partie s'intéresse aux récits qu'élaborent les élus pour justifier la réforme.",
    "La comparaison avec d'autres provinces révèle des convergences et des écarts inattendus.",
    "L'intervenante évoquera aussi les limites des données et ce qui reste à élucider.",
    "Les participants sont invités à lire le document de travail au préalable.",
    "Les conséquences pour {topic} sont discutées, notamment en matière d'équité.",
    "Le projet associe des chercheuses, des chercheurs et des partenaires du milieu.",
    "Une brève réponse d'un discutant précédera la période de questions.",
)
EN_LIST_ITEMS = (
    "what counts as success", "who is accountable", "how costs are shared",
    "which data are collected", "how residents are consulted",
)
FR_LIST_ITEMS = (
    "ce qui définit la réussite", "qui rend des comptes", "le partage des coûts",
    "les données recueillies", "la consultation des habitants",
)

FIRST_NAMES = (
    "Caitlin", "Amira", "Jonas", "Priya", "Mathieu", "Hélène", "Kwame", "Sofia",
    "Liam", "Noémie", "Chen", "Olusegun", "Élodie", "Rafael", "Yuki", "François",
)
LAST_NAMES = (
    "McMullin", "Haddad", "Lindqvist", "Raman", "Côté", "Lefèvre", "Mensah", "García",
    "O'Brien", "Tremblay", "Wu", "Adeyemi", "Bélanger", "Moreau", "Tanaka", "Nguyễn",
)
AFFILIATIONS = (
    "Carleton University", "McGill University", "Université de Montréal",
    "University of Toronto", "Sciences Po", "London School of Economics",
    "Université Laval", "University of Edinburgh", "Statistics Canada", "OECD",
)
ROOMS = (
    "5136 Student Resource Centre, Richcraft Hall", "Room 2200, Richcraft Hall",
    "Salle des Actes, 27 rue Saint-Guillaume", "Seminar Room B, Clement House",
    "Pavillon Jean-Brillant, salle B-2245", "Senate Room, Robertson Hall",
)
DURATIONS = ("90m", "1h", "1h30m", "2h", "45m")


@dataclass(frozen=True)
class SeriesSpec:
    """What a generated series looks like."""

    slug: str
    title: str
    description: str
    timezone: str
    language: str


def slugify(text: str, limit: int = MAX_ID) -> str:
    """Lowercase ASCII slug of ``text``: letters, digits and single dashes."""
    table = str.maketrans("àâäçéèêëîïôöùûüÿœæễ", "aaaceeeeiioouuuyoee")
    ascii_text = text.lower().translate(table)
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")
    return slug[:limit].rstrip("-") or "x"


def yaml_scalar(value: str) -> str:
    """A one-line YAML scalar: plain when unambiguous, else JSON-quoted."""
    if re.fullmatch(r"[A-Za-z][\w ,.'()/@-]*", value) and not value.endswith(" "):
        return value
    return json.dumps(value, ensure_ascii=False)


def yaml_block(text: str, indent: int) -> str:
    """A literal block scalar (``|``) for multi-line Markdown."""
    pad = " " * indent
    lines = [pad + line if line else "" for line in text.rstrip("\n").split("\n")]
    return "|\n" + "\n".join(lines)


def make_series(rng: random.Random, count: int) -> list[SeriesSpec]:
    """Series with mixed timezones; one in five is French (Paris or Toronto)."""
    specs: list[SeriesSpec] = []
    used: set[str] = set()
    for index in range(count):
        french = index % 5 == 1
        title, description = rng.choice(FR_SERIES if french else EN_SERIES)
        if french:
            timezone = "America/Toronto" if (index // 5) % 2 else "Europe/Paris"
        else:
            timezone = TIMEZONES[index % len(TIMEZONES)]
        slug = slugify(title, 60)
        if slug in used:
            slug = f"{slug}-{index + 1}"
        used.add(slug)
        specs.append(SeriesSpec(slug, title, description, timezone, "fr" if french else "en"))
    return specs


def series_yaml(spec: SeriesSpec, rng: random.Random) -> str:
    """The text of series.yaml for ``spec``."""
    email = f"{spec.slug[:40]}@lists.example.org"
    return "\n".join([
        f"title: {yaml_scalar(spec.title)}",
        f"description: {yaml_scalar(spec.description)}",
        f"timezone: {spec.timezone}",
        f"language: {spec.language}",
        f"organizer: {{name: {json.dumps(spec.title[:30].strip(), ensure_ascii=False)}, "
        f"email: events@{slugify(spec.title, 20)}.example.org}}",
        f"default_duration: {rng.choice(DURATIONS)}",
        f"default_location: {yaml_scalar(rng.choice(ROOMS))}",
        "mailing_list:",
        f"  to: {email}",
        "announce:",
        "  - {kind: announcement, days_before: 7}",
        "  - {kind: reminder, days_before: 1}",
        "",
    ])


def make_title(rng: random.Random, french: bool) -> str:
    """An event title such as 'Lead: topic and frame'."""
    words = FR_WORDS if french else EN_WORDS
    joiner = " : " if french else ": "
    link = " et " if french else " and "
    topic = rng.choice(words["topic"])
    topic = topic[0].upper() + topic[1:] if not french else topic
    if rng.random() < 0.5:
        return f"{rng.choice(words['lead'])}{joiner}{topic}{link}{rng.choice(words['frame'])}"
    return f"{rng.choice(words['lead'])}{joiner}{topic}"


def make_paragraph(rng: random.Random, french: bool, topic: str) -> str:
    """Three to five sentences of prose."""
    sentences = FR_SENTENCES if french else EN_SENTENCES
    chosen = rng.sample(sentences, rng.randint(3, 5))
    return " ".join(s.format(topic=topic) for s in chosen)


def make_list(rng: random.Random, french: bool) -> str:
    """A short Markdown bullet list with a lead-in line."""
    items = rng.sample(FR_LIST_ITEMS if french else EN_LIST_ITEMS, rng.randint(2, 4))
    lead = "Questions abordées :" if french else "Questions covered:"
    return lead + "\n\n" + "\n".join(f"- {item}" for item in items)


def make_abstract(rng: random.Random, french: bool) -> str:
    """800-2,000 characters of Markdown: paragraphs, emphasis, a link, maybe a list."""
    words = FR_WORDS if french else EN_WORDS
    while True:
        topic = rng.choice(words["topic"])
        blocks = [make_paragraph(rng, french, topic) for _ in range(rng.randint(2, 3))]
        if rng.random() < 0.35:
            blocks.insert(rng.randint(1, len(blocks)), make_list(rng, french))
        paper = f"https://papers.example.org/wp/{rng.randint(1000, 9999)}"
        label = "document de travail" if french else "working paper"
        blocks.append(f"Lire le [{label}]({paper})." if french else f"Read the [{label}]({paper}).")
        text = "\n\n".join(blocks)
        if 800 <= len(text) <= 2000:
            return text


def make_speaker(rng: random.Random, french: bool) -> dict[str, str]:
    """A speaker with name, affiliation and a short Markdown bio."""
    name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
    affiliation = rng.choice(AFFILIATIONS)
    if french:
        bio = (f"{name} est professeure à *{affiliation}*. Ses travaux portent sur "
               f"{rng.choice(FR_WORDS['topic'])}.")
    else:
        bio = (f"{name} is an associate professor at *{affiliation}*, working on "
               f"{rng.choice(EN_WORDS['topic'])}.")
    if rng.random() < 0.4:
        page = "Voir [sa page]" if french else "See [their page]"
        bio += f" {page}(https://people.example.org/{slugify(name)})."
    return {"name": name, "affiliation": affiliation, "bio": bio}


def speakers_yaml(speakers: list[dict[str, str]], rng: random.Random) -> list[str]:
    """YAML lines for ``speakers:`` (or the single-mapping ``speaker:`` form)."""
    if len(speakers) == 1 and rng.random() < 0.15:
        s = speakers[0]
        return ["speaker:", f"  name: {yaml_scalar(s['name'])}",
                f"  affiliation: {yaml_scalar(s['affiliation'])}",
                f"  bio: {yaml_block(s['bio'], 4)}"]
    lines = ["speakers:"]
    for s in speakers:
        lines += [f"  - name: {yaml_scalar(s['name'])}",
                  f"    affiliation: {yaml_scalar(s['affiliation'])}",
                  f"    bio: {yaml_block(s['bio'], 6)}"]
    return lines


def timing_yaml(rng: random.Random, day: date) -> list[str]:
    """start/end/duration lines: timed with end (most), duration, default, or all-day."""
    kind = rng.random()
    if kind < 0.05:
        last = day + timedelta(days=rng.choice((0, 0, 1, 2)))
        return [f"start: {day.isoformat()}", f"end: {last.isoformat()}"]
    minutes = rng.randrange(9 * 60, 18 * 60 + 1, 30)
    start = datetime(day.year, day.month, day.day, minutes // 60, minutes % 60)
    lines = [f"start: {start:%Y-%m-%d %H:%M}"]
    if kind < 0.25:
        lines.append(f"duration: {rng.choice(DURATIONS)}")
    elif kind >= 0.30:
        end = start + timedelta(minutes=rng.choice((60, 60, 75, 90, 120)))
        lines.append(f"end: {end:%Y-%m-%d %H:%M}")
    return lines


def event_yaml(rng: random.Random, spec: SeriesSpec, title: str, day: date) -> str:
    """The text of one event file."""
    french = spec.language == "fr"
    timing = timing_yaml(rng, day)
    lines = [f"title: {yaml_scalar(title)}", *timing]
    if rng.random() < 0.03 and ":" in timing[0].removeprefix("start:"):
        lines.append(f"timezone: {rng.choice(TIMEZONES)}")
    speakers = [make_speaker(rng, french) for _ in range(rng.choice((1, 1, 1, 2)))]
    lines += speakers_yaml(speakers, rng)
    if rng.random() < 0.7:
        lines.append(f"location: {yaml_scalar(rng.choice(ROOMS))}")
    if rng.random() < 0.3:
        lines.append(f"online_url: https://meet.example.org/{slugify(title, 30)}")
    if rng.random() < 0.1:
        lines.append(f"url: https://talks.example.org/{day.year}/{slugify(title, 40)}")
    lines.append(f"abstract: {yaml_block(make_abstract(rng, french), 2)}")
    lines.append(f"tags: [{', '.join(rng.sample(TAGS, rng.randint(1, 4)))}]")
    status = rng.random()
    if status < 0.03:
        lines.append("status: cancelled")
    elif status < 0.06:
        lines.append("status: tentative")
    elif status < 0.5:
        lines.append("status: confirmed")
    return "\n".join(lines) + "\n"


def event_id(day: date, title: str, used: set[str]) -> str:
    """A unique id like '2025-03-07-some-title-slug' (at most 80 chars)."""
    base = slugify(f"{day.isoformat()}-{title}", MAX_ID)
    candidate, n = base, 2
    while candidate in used:
        suffix = f"-{n}"
        candidate, n = base[: MAX_ID - len(suffix)].rstrip("-") + suffix, n + 1
    used.add(candidate)
    return candidate


def write_series(root: Path, spec: SeriesSpec, events: int, rng: random.Random) -> None:
    """Write series.yaml and ``events`` event files for one series."""
    folder = root / "series" / spec.slug
    (folder / "events").mkdir(parents=True)
    (folder / "series.yaml").write_text(series_yaml(spec, rng), encoding="utf-8")
    used: set[str] = set()
    for _ in range(events):
        day = FIRST_DAY + timedelta(days=rng.randrange(SPAN_DAYS))
        title = make_title(rng, spec.language == "fr")
        path = folder / "events" / f"{event_id(day, title, used)}.yaml"
        path.write_text(event_yaml(rng, spec, title, day), encoding="utf-8")


def site_yaml() -> str:
    """The text of announcer.yaml."""
    return (
        "title: Public Policy Events\n"
        f"base_url: {BASE_URL}\n"
        "output: public\n"
        "language: en\n"
        "email:\n"
        '  from: "Seminar announcements <seminars@example.org>"\n'
    )


def generate(out: Path, series: int, events_per_series: int, seed: int = 1) -> None:
    """Write a project tree with ``series`` series of ``events_per_series`` events each."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty")
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    (out / "announcer.yaml").write_text(site_yaml(), encoding="utf-8")
    for spec in make_series(rng, series):
        write_series(out, spec, events_per_series, rng)


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="directory to create (must be empty)")
    parser.add_argument("--series", type=int, default=2)
    parser.add_argument("--events", type=int, default=50, help="events per series")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    generate(args.out, args.series, args.events, args.seed)


if __name__ == "__main__":
    main()
