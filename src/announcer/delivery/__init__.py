"""Getting built things out: published files, and email that cannot be taken back.

``outbox`` records every planned message durably before it is sent and keeps its
fate; ``smtp`` hands messages to an SMTP server. Neither is imported here, so
importing the package stays cheap for code that only publishes files.
"""
