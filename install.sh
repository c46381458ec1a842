#!/bin/bash
# install.sh - bootstrap barracuda on a fresh Debian 12/13 (or Ubuntu LTS) machine, as root:
#
#   ./install.sh --yes [barracuda install options...]
#
# 1. installs what the tool needs from the distribution (python3, python3-venv and Debian's
#    packages of its Python libraries: no package index is needed, security updates come
#    with apt);
# 2. creates a virtual environment on top of them, one per version and checkout:
#    /opt/barracuda-envs/<version>-<hash>, and installs the package from this checkout into it
#    (skipped when that environment exists and is complete);
# 3. switches the symlink /opt/barracuda (BARRACUDA_PREFIX) to it atomically, keeping the one
#    it replaces as /opt/barracuda-envs/previous (for `barracuda rollback`); a plain
#    /opt/barracuda directory of an older release is moved into /opt/barracuda-envs first;
# 4. links barracuda and octopus into /usr/local/sbin (through /opt/barracuda);
# 5. runs `barracuda install` with the arguments given.
#
# Re-running it is safe and quick. Without --yes on a terminal it shows the plan and asks.
set -euo pipefail

LINK=${BARRACUDA_PREFIX:-/opt/barracuda}
ENVS=$LINK-envs
KEEP_ENVS=3  # besides the live and the previous one (as profiles/upgrade.yml tool.keep_envs)
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
        --help|-h) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
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
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$SRC/pyproject.toml")
[ -n "$version" ] || die "no version in $SRC/pyproject.toml"
ENV_DIR=$ENVS/$version-${want_hash:0:12}
have_hash=$(cat "$ENV_DIR/.source-sha256" 2>/dev/null || true)
need_env=0; [ -x "$ENV_DIR/bin/barracuda" ] && [ "$want_hash" = "$have_hash" ] \
    && "$ENV_DIR/bin/python3" -c 'import installer' 2>/dev/null || need_env=1
legacy=0; [ -d "$LINK" ] && [ ! -L "$LINK" ] && legacy=1
need_switch=0; [ -L "$LINK" ] && [ "$(readlink "$LINK")" = "$ENV_DIR" ] || need_switch=1

if [ "$yes" = 0 ]; then
    [ -t 0 ] || die "not a terminal: pass --yes to install without asking" 2
    echo "install.sh will:"
    [ ${#missing[@]} -gt 0 ] && echo "  - apt-get install ${missing[*]}"
    [ "$need_env" = 1 ] && echo "  - install barracuda from $SRC into $ENV_DIR"
    [ "$legacy" = 1 ] && echo "  - move the environment $LINK of an older release into $ENVS"
    [ "$need_switch" = 1 ] && echo "  - point $LINK at $ENV_DIR"
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

# Replace the symlink $1 by one pointing at $2 with a single rename (never missing).
switch_link() {
    ln -sfn "$2" "$1.new.$$"
    mv -T "$1.new.$$" "$1"
}

if [ "$need_env" = 1 ]; then
    say "installing barracuda from $SRC into $ENV_DIR"
    mkdir -p "$ENVS"
    rm -rf "$ENV_DIR"
    # A venv is not relocatable: it is built where it stays; the link moves only once the
    # environment is complete (the hash file is written last).
    python3 -m venv --system-site-packages "$ENV_DIR"
    build=$(mktemp -d)
    trap 'rm -rf "$build"' EXIT
    # Build from a copy: setuptools writes build/ and *.egg-info next to the sources.
    (cd "$SRC" && cp -r pyproject.toml README.md installer profiles templates "$build"/)
    "$ENV_DIR/bin/pip" install -q --no-deps --no-build-isolation --no-index \
        --disable-pip-version-check --force-reinstall "$build" >/dev/null
    echo "$want_hash" > "$ENV_DIR/.source-sha256"
fi

if [ "$need_switch" = 1 ]; then
    mkdir -p "$ENVS"
    old=""
    if [ "$legacy" = 1 ]; then
        old_version=$("$LINK/bin/barracuda" version 2>/dev/null || echo unknown)
        old=$ENVS/legacy-$old_version-$(date +%Y%m%d%H%M%S)
        say "moving the environment $LINK of barracuda $old_version to $old"
        mv -T "$LINK" "$old"
    elif [ -L "$LINK" ]; then
        old=$(readlink -f "$LINK")
    fi
    switch_link "$LINK" "$ENV_DIR"
    [ -n "$old" ] && [ -d "$old" ] && [ "$old" != "$(readlink -f "$ENV_DIR")" ] \
        && switch_link "$ENVS/previous" "$old"
    say "$LINK -> $ENV_DIR"
    # Keep the live and the previous environment and the newest few others.
    live=$(readlink -f "$LINK"); prev=$(readlink -f "$ENVS/previous" 2>/dev/null || true)
    find "$ENVS" -mindepth 1 -maxdepth 1 -type d ! -name '.*' -printf '%T@ %p\n' \
        | sort -rn | cut -d' ' -f2- | tail -n +$((KEEP_ENVS + 1)) | while read -r env; do
            [ "$env" = "$live" ] || [ "$env" = "$prev" ] || rm -rf "$env"
        done
fi

for tool in barracuda octopus; do
    ln -sfn "$LINK/bin/$tool" "$BIN_DIR/$tool"
done

exec "$BIN_DIR/barracuda" install "$@"
