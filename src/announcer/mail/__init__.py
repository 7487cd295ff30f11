"""Email announcements: which messages are due, what they say, and getting them out.

    schedule   pure: site + ledger + now -> the messages due now
    compose    one EmailMessage per (due message, recipient), from templates
    announce   schedule -> compose -> outbox -> deliver -> ledger

The rules are documented for organisers in docs/email.md.
"""
