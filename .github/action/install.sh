#!/usr/bin/env bash
# The install step of action.yml: puts a portcullis binary at
# $PORTCULLIS_INSTALL_ROOT/bin/portcullis, from a release when one was built from exactly this
# action's source, otherwise by building that source with cargo. It lives in a file so that the
# test suite runs exactly what the action runs, and so that .github/workflows/release.yml names
# its assets with the same functions (the `asset`, `source-asset` and `target` commands below).
#
# Which release: the tag is `v` + the version in the action's Cargo.toml, and the release's
# `portcullis-<tag>-source.sha256` must equal the hash of this action's Cargo.toml, Cargo.lock
# and src/. The action's ref (`github.action_ref`) is only logged: it is empty for `uses: ./`, a
# moving tag such as `v1` or a commit SHA names no release, and the runner leaves it empty or
# wrong inside composite actions (actions/runner#2473). Comparing sources gets every one of
# these right: a SHA pin of a release commit downloads, `main` ahead of the release builds.
#
# A release that is absent (no tag, not published yet, no binary for this runner) or built from
# other source means building from source. An archive whose sha256 differs from SHA256SUMS is
# refused and nothing is installed: corruption or tampering is not papered over by a build.
#
# Environment (action.yml sets these from its inputs and the runner context):
#   PORTCULLIS_INSTALL_ROOT   where bin/portcullis goes (default ~/.portcullis-action)
#   PORTCULLIS_DOWNLOAD_BASE  releases are at BASE/<tag>/<asset>; https:// or file://; empty: build
#   PORTCULLIS_OS, PORTCULLIS_ARCH   runner.os and runner.arch (default: this machine's)
#   PORTCULLIS_REF            github.action_ref, for the log
#   PORTCULLIS_SOURCE         the action's source (default: two folders above this script)
#   PORTCULLIS_INSTALL_BUILD  a shell command that replaces `cargo install` (for tests)
#
# Commands other than the install, for the release workflow and the tests:
#   install.sh source-hash | tag | targets | target OS ARCH | asset TAG TARGET | source-asset TAG
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=${PORTCULLIS_SOURCE:-$(cd "$here/../.." && pwd)}
default_base=https://github.com/portcullis/portcullis/releases/download
sums_name=SHA256SUMS

# Release targets by runner (runner.os/runner.arch). Linux binaries are static (musl), so they
# run on any distribution; portcullis needs Unix process groups, so there is no Windows build.
target_for() {
    case "$1/$2" in
        Linux/X64) echo x86_64-unknown-linux-musl ;;
        Linux/ARM64) echo aarch64-unknown-linux-musl ;;
        macOS/X64) echo x86_64-apple-darwin ;;
        macOS/ARM64) echo aarch64-apple-darwin ;;
        *) return 1 ;;
    esac
}

all_targets() {
    local pair
    for pair in Linux/X64 Linux/ARM64 macOS/X64 macOS/ARM64; do
        target_for "${pair%/*}" "${pair#*/}"
    done
}

asset_name() { printf 'portcullis-%s-%s.tar.gz\n' "$1" "$2"; }
source_asset_name() { printf 'portcullis-%s-source.sha256\n' "$1"; }

# sha256sum on Linux, shasum on macOS: both print `<hex>  <name>`, so a hash of their output
# is the same on either.
if command -v sha256sum >/dev/null 2>&1; then sha256=(sha256sum); else sha256=(shasum -a 256); fi

# What a binary is built from: every file of Cargo.toml, Cargo.lock and src/, by path and
# content, in a fixed order. The cache key and the release's identity are this one hash.
source_hash() {
    (cd "$src" && find Cargo.toml Cargo.lock src -type f -print0 | LC_ALL=C sort -z |
        xargs -0 "${sha256[@]}" | "${sha256[@]}" | cut -d' ' -f1)
}

cargo_version() {
    awk -F'"' '/^\[/ { pkg = ($0 == "[package]") } pkg && /^version *=/ { print $2; exit }' \
        "$src/Cargo.toml"
}

this_os() { case "$(uname -s)" in Linux) echo Linux ;; Darwin) echo macOS ;; *) uname -s ;; esac; }
this_arch() {
    case "$(uname -m)" in
        x86_64 | amd64) echo X64 ;;
        aarch64 | arm64) echo ARM64 ;;
        *) uname -m ;;
    esac
}

gha() { [[ ${GITHUB_ACTIONS:-} == true ]]; }
note() { printf 'portcullis install: %s\n' "$*" >&2; }
# In a GitHub job, warnings and errors are workflow commands (annotations) on stdout.
warn() {
    if gha; then printf '::warning title=portcullis install::%s\n' "$*"; else printf 'warning: %s\n' "$*" >&2; fi
}
die() {
    if gha; then printf '::error title=portcullis install::%s\n' "$1"; else printf 'error: %s\n' "$1" >&2; fi
    printf 'help: %s\n' "$2" >&2
    exit 1
}

# Fetches URL into FILE; on failure prints curl's reason and returns non-zero. Only https and
# file (a local folder standing in for a release, as the tests do) are accepted, redirects
# (GitHub sends downloads to its object store) only to https.
fetch() {
    curl --fail --silent --show-error --location --retry 2 --connect-timeout 20 \
        --proto '=https,file' --proto-redir '=https' --output "$2" "$1" 2>&1
}

build() {
    note "building from source ($1)"
    if [[ -n ${PORTCULLIS_INSTALL_BUILD:-} ]]; then
        PORTCULLIS_SOURCE=$src PORTCULLIS_INSTALL_ROOT=$root bash -c "$PORTCULLIS_INSTALL_BUILD"
    else
        command -v cargo >/dev/null 2>&1 ||
            die "cannot build portcullis: \`cargo\` is not installed on this runner" \
                "install a Rust toolchain (rustup) before this step, or use a released version of the action"
        cargo install --locked --path "$src" --root "$root"
    fi
    [[ -x $root/bin/portcullis ]] ||
        die "the build left no binary at \`$root/bin/portcullis\`" "see the build's output above"
    note "built $("$root/bin/portcullis" --version) at \`$root/bin/portcullis\`"
}

install() {
    root=${PORTCULLIS_INSTALL_ROOT:-$HOME/.portcullis-action}
    local base=${PORTCULLIS_DOWNLOAD_BASE-$default_base}
    local os=${PORTCULLIS_OS:-$(this_os)} arch=${PORTCULLIS_ARCH:-$(this_arch)}
    if [[ $os == Windows ]]; then
        die "portcullis does not run on Windows runners (it needs Unix process groups)" \
            "run the gate on a Linux or macOS runner (runs-on: ubuntu-latest)"
    fi

    local tag hash target
    tag=v$(cargo_version)
    hash=$(source_hash)
    note "${PORTCULLIS_REF:+action ref \`$PORTCULLIS_REF\`, }version \`$tag\`, source \`${hash:0:12}\`, runner \`$os/$arch\`"

    [[ -n $base ]] || { build "the download base is empty"; return; }
    base=${base%/}
    target=$(target_for "$os" "$arch") || { build "no release is built for \`$os/$arch\`"; return; }

    tmp=$(mktemp -d "${TMPDIR:-/tmp}/portcullis-install.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    local url=$base/$tag why
    if ! why=$(fetch "$url/$sums_name" "$tmp/$sums_name"); then
        build "no release \`$tag\` at \`$base\`: $why"
        return
    fi
    local source_asset released
    source_asset=$(source_asset_name "$tag")
    if ! why=$(fetch "$url/$source_asset" "$tmp/source"); then
        build "release \`$tag\` has no \`$source_asset\`: $why"
        return
    fi
    released=$(tr -d ' \n\r' < "$tmp/source")
    if [[ $released != "$hash" ]]; then
        build "release \`$tag\` was built from other source: \`${released:0:12}\`, this action's is \`${hash:0:12}\`"
        return
    fi

    local asset expected actual
    asset=$(asset_name "$tag" "$target")
    expected=$(awk -v name="$asset" '$2 == name || $2 == "*" name { print $1; exit }' "$tmp/$sums_name")
    if [[ -z $expected ]]; then
        build "release \`$tag\` has no binary for \`$target\`"
        return
    fi
    note "downloading \`$url/$asset\`"
    if ! why=$(fetch "$url/$asset" "$tmp/$asset"); then
        warn "release \`$tag\` lists \`$asset\` but it cannot be downloaded: $why"
        build "the release binary cannot be downloaded"
        return
    fi
    actual=$("${sha256[@]}" "$tmp/$asset" | cut -d' ' -f1)
    [[ $actual == "$expected" ]] ||
        die "checksum mismatch for \`$asset\` from \`$url\`: $sums_name says \`$expected\`, the download is \`$actual\`; nothing was installed" \
            "the download was corrupted or the release was altered: re-run the job, and if it fails again report it; \`download-base: ''\` builds from source meanwhile"

    mkdir -p "$tmp/unpacked"
    tar -xzf "$tmp/$asset" -C "$tmp/unpacked" portcullis ||
        die "\`$asset\` holds no \`portcullis\`; nothing was installed" "report it: the release is broken"
    local version
    if ! version=$("$tmp/unpacked/portcullis" --version 2>&1); then
        warn "the release binary for \`$target\` does not run on this runner: $version"
        build "the release binary does not run here"
        return
    fi
    # Into place with one rename, so an interrupted install never leaves a partial binary.
    mkdir -p "$root/bin"
    cp "$tmp/unpacked/portcullis" "$root/bin/.portcullis.$$"
    chmod 755 "$root/bin/.portcullis.$$"
    mv -f "$root/bin/.portcullis.$$" "$root/bin/portcullis"
    note "installed $version (release \`$tag\`, \`$target\`, sha256 verified) at \`$root/bin/portcullis\`"
}

case "${1:-install}" in
    install) install ;;
    source-hash) source_hash ;;
    tag) echo "v$(cargo_version)" ;;
    targets) all_targets ;;
    target) target_for "$2" "$3" ;;
    asset) asset_name "$2" "$3" ;;
    source-asset) source_asset_name "$2" ;;
    *)
        printf "error: unknown command \`%s\`\nhelp: %s\n" "$1" \
            "install.sh [install | source-hash | tag | targets | target OS ARCH | asset TAG TARGET | source-asset TAG]" >&2
        exit 2
        ;;
esac
