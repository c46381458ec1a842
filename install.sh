#!/bin/bash
# install.sh - bootstrap barracuda on a fresh Debian 12/13 (or Ubuntu LTS) machine, as root:
#
#   ./install.sh --yes [barracuda install options...]
#
# 1. installs what the tool needs from the distribution (python3, python3-venv and Debian's
#    packages of its Python libraries: no package index is needed, security updates come
#    with apt);
# 2. creates the virtual environment /opt/barracuda (BARRACUDA_PREFIX) on top of them;
# 3. installs the package from this checkout into it (skipped when the checkout is unchanged);
# 4. links barracuda and octopus into /usr/local/sbin;
# 5. runs `barracuda install` with the arguments given.
#
# Re-running it is safe and quick. Without --yes on a terminal it shows the plan and asks.
set -euo pipefail

PREFIX=${BARRACUDA_PREFIX:-/opt/barracuda}
BIN_DIR=/usr/local/sbin
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
APT_PACKAGES=(python3 python3-venv python3-pip python3-setuptools python3-wheel
              python3-typer python3-click python3-jinja2 python3-distro python3-psutil
              python3-requests python3-yaml)
export DEBIAN_FRONTEND=noninteractive
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

say() { printf 'install.sh: %s\n' "$*" >&2; }
die() { printf 'install.sh: error: %s\n' "$1" >&2; exit "${2:-1}"; }

yes=0
for arg in "$@"; do
    case "$arg" in
        --yes|-y) yes=1 ;;
        --help|-h) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    esac
done

[ "$(id -u)" -eq 0 ] || die "run as root (the tool installs system packages and services)" 2
command -v apt-get >/dev/null && command -v dpkg-query >/dev/null \
    || die "this is not a Debian or Ubuntu system (no apt-get)" 2

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    status=$(dpkg-query -W -f '${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)
    [ "${status:0:2}" = "ii" ] || missing+=("$pkg")
done

# What to do with the package: nothing when this checkout is what is installed.
source_hash() {
    (cd "$SRC" && find pyproject.toml installer profiles templates -type f \
        ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 | LC_ALL=C sort -z \
        | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
}
want_hash=$(source_hash)
have_hash=$(cat "$PREFIX/.source-sha256" 2>/dev/null || true)
need_venv=0; [ -x "$PREFIX/bin/python3" ] && "$PREFIX/bin/python3" -c 'import sys' 2>/dev/null \
    || need_venv=1
need_pkg=0; [ "$need_venv" = 0 ] && [ "$want_hash" = "$have_hash" ] \
    && [ -x "$PREFIX/bin/barracuda" ] || need_pkg=1

if [ "$yes" = 0 ]; then
    [ -t 0 ] || die "not a terminal: pass --yes to install without asking" 2
    echo "install.sh will:"
    [ ${#missing[@]} -gt 0 ] && echo "  - apt-get install ${missing[*]}"
    [ "$need_venv" = 1 ] && echo "  - create the virtual environment $PREFIX"
    [ "$need_pkg" = 1 ] && echo "  - install barracuda from $SRC into $PREFIX"
    echo "  - link barracuda and octopus into $BIN_DIR"
    echo "  - run: barracuda install $* (it shows its own plan and asks again)"
    read -r -p "Continue? [y/N] " answer
    case "$answer" in y|Y|yes|YES) ;; *) die "nothing done" 1 ;; esac
fi

if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ "$need_venv" = 1 ]; then
    say "creating $PREFIX"
    rm -rf "$PREFIX"
    python3 -m venv --system-site-packages "$PREFIX"
fi

if [ "$need_pkg" = 1 ]; then
    say "installing barracuda from $SRC"
    build=$(mktemp -d)
    trap 'rm -rf "$build"' EXIT
    # Build from a copy: setuptools writes build/ and *.egg-info next to the sources.
    (cd "$SRC" && cp -r pyproject.toml README.md installer profiles templates "$build"/)
    "$PREFIX/bin/pip" install -q --no-deps --no-build-isolation --no-index \
        --disable-pip-version-check --force-reinstall "$build" >/dev/null
    echo "$want_hash" > "$PREFIX/.source-sha256"
fi

for tool in barracuda octopus; do
    ln -sfn "$PREFIX/bin/$tool" "$BIN_DIR/$tool"
done

exec "$BIN_DIR/barracuda" install "$@"
