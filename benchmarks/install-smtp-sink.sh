#!/bin/sh
# Install Postfix's smtp-sink (for benchmarks/smtp.py) without running a mail system.
#
# Debian ships smtp-sink in the postfix package. This installs it with
# "No configuration" preseeded, so no main.cf is written and no mail system is
# set up, and with invoke-rc.d forbidden to start services during the install.
# Nothing here starts, stops or configures the postfix service. Safe to re-run.
# Needs root (run it with sudo otherwise).
set -eu

SINK=/usr/sbin/smtp-sink
POLICY=/usr/sbin/policy-rc.d

if [ -x "$SINK" ]; then
    echo "smtp-sink is already installed: $SINK"
    exit 0
fi

echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections

# Forbid service starts for the duration of the install, unless a policy exists already.
own_policy=""
if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$POLICY"
    chmod 755 "$POLICY"
    own_policy=yes
    trap 'rm -f "$POLICY"' EXIT INT TERM
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends postfix

if [ -n "$own_policy" ]; then
    rm -f "$POLICY"
    trap - EXIT INT TERM
fi

echo "installed: $SINK"
