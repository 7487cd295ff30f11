#!/usr/bin/env bash
# Install what the test suite needs beyond Python packages on a fresh Debian
# bookworm machine, as root. Idempotent and quick when everything is present:
# apt runs only for packages that are missing, npm only when the lock changed.
#
#   bash .ci/deps.sh
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Debian packages, one per line: "package  command-or-file-that-proves-it".
# To add one, add a line; a package already installed is not touched.
apt_wanted=(
    "pkg-config   cmd:pkg-config"
    "gcc          cmd:cc"
    "libc6-dev    file:/usr/include/stdio.h"
    "libical-dev  file:/usr/include/libical/ical.h"
    "nodejs       cmd:node"
    "npm          cmd:npm"
    "chromium     cmd:chromium"
    "shellcheck   cmd:shellcheck"
    "fonts-dejavu-core file:/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
)

present() {
    case "$1" in
        cmd:*) command -v "${1#cmd:}" >/dev/null 2>&1 ;;
        file:*) [[ -e "${1#file:}" ]] ;;
        *) echo "deps.sh: bad check '$1'" >&2; exit 2 ;;
    esac
}

missing=()
for entry in "${apt_wanted[@]}"; do
    read -r package check <<<"$entry"
    present "$check" || missing+=("$package")
done

if ((${#missing[@]})); then
    echo "deps.sh: installing ${missing[*]}"
    apt_lock_wait=(-o DPkg::Lock::Timeout=300)
    apt-get "${apt_lock_wait[@]}" update -qq
    DEBIAN_FRONTEND=noninteractive apt-get "${apt_lock_wait[@]}" install -y -qq \
        --no-install-recommends "${missing[@]}"
fi

node_major="$(node --version | sed -E 's/^v([0-9]+).*/\1/')"
if ((node_major < 20)); then
    echo "deps.sh: node $(node --version) found, the interop tests need 20 or later" >&2
    exit 1
fi

# npm ci wipes and reinstalls node_modules, so skip it while the lock file is
# the one the current node_modules was installed from.
interop="$repo/tests/interop"
stamp="$interop/node_modules/.announcer-lock.sha256"
lock_sum="$(sha256sum "$interop/package-lock.json" | cut -d' ' -f1)"
if [[ "$(cat "$stamp" 2>/dev/null)" != "$lock_sum" ]]; then
    (cd "$interop" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$lock_sum" >"$stamp"
fi
