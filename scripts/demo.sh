#!/bin/sh
# The quick start's main job, on the embedded default store (no server):
# commit a real directory twice, then check versions out again, and show that they match.
# Usage: npm run demo [-- DIR]   (DIR defaults to this repository's src/ directory)
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
src=$(cd "${1:-$repo/src}" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/elton-demo.XXXXXX")
elton() { echo "\$ elton $*" >&2; node "$repo/bin/run.js" "$@"; }

cp -R "$src" "$work/tree"
cd "$work/tree"
elton init --tree demo
elton commit -m "first snapshot of $src"
echo "a change made by the demo at $(date -u +%FT%TZ)" > DEMO-CHANGE.txt
elton status
elton commit -m "second snapshot"
elton log
elton clone "$work/tree" demo@1 "$work/restored"
echo "\$ diff -r --exclude=.elton $src $work/restored" >&2
diff -r --exclude=.elton "$src" "$work/restored" && echo "demo@1 checked out into $work/restored matches $src byte for byte"
elton checkout demo@1
test ! -e DEMO-CHANGE.txt && echo "checkout demo@1 removed the file that demo@2 added"
echo "workspace: $work/tree   (try: cd $work/tree && node $repo/bin/run.js log)"
