"""``python -m announcer`` is the ``announcer`` command."""

from announcer.cli import run

if __name__ == "__main__":
    run()
