"""announcer: publish event series as calendars, feeds, web pages and email."""

__version__ = "0.1.0"
