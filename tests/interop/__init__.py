"""Calendar-client interop harness: see clients.py."""
