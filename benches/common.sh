# Shared by the benchmark scripts: `source "$here/common.sh"` after setting `here` and `repo`.

# require NAME TOOL [INSTALL-HINT]: exits 2 with a hint when TOOL is not on PATH.
require() {
    local name=$1 tool=$2 hint=${3:-apt-get install -y $2}
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "$name: \`$tool\` is not installed ($hint)." >&2
        exit 2
    fi
}

# build_release: builds the release binary and sets `bin` to it. With PORTCULLIS_BIN set, uses
# that binary instead (to compare two builds on the same machine and graphs).
build_release() {
    if [ -n "${PORTCULLIS_BIN:-}" ]; then
        bin=$PORTCULLIS_BIN
        return
    fi
    echo "building the release binary..." >&2
    (cd "$repo" && cargo build --release --quiet)
    bin="$repo/target/release/portcullis"
}
