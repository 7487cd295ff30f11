"""The organiser's workflow around the core: start a project, add events, preview,
see what a change does before it lands, and bring in calendars from elsewhere.

Each module is a library function the CLI (:mod:`announcer.workflow.commands`)
maps to words, so tests and other tools call the same code organisers run.
"""
