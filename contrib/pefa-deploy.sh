#!/usr/bin/env bash
# pefa-deploy.sh NEW_INDEX LIVE_PATH - ships a pefa index to a serving host's
# live path without ever changing the bytes a running reader has mapped:
#   1. copy NEW_INDEX and its id map beside LIVE_PATH (same filesystem) under
#      a temporary name,
#   2. pefa-dump --verify the copy (every checksum, the PEFA invariants, the
#      id map's size and hash),
#   3. rename the copy over LIVE_PATH (atomic: a reader sees the old file or
#      the new one, never half of one).
# pefa-serve notices the new inode and reloads; old mappings stay valid
# until their last request ends. The id map keeps its name (it carries the
# index's UUID), so old and new id maps can sit side by side.
# `cp NEW LIVE` instead would truncate and rewrite the file that readers
# have mapped: they fault with SIGBUS.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 NEW_INDEX LIVE_PATH" >&2; exit 2; }
new=$1 live=$2
dir=$(dirname "$live")
idmap=$(pefa-dump --json "$new" | sed -n 's/.*"idmap.file":"\([^"]*\)".*/\1/p')
tmp=$(mktemp "$dir/.pefa-deploy.XXXXXX")
trap 'rm -f "$tmp"' EXIT
if [ -n "$idmap" ]; then
  # the id map is named in the index's META relative to the index's directory
  cp "$(dirname "$new")/$idmap" "$dir/$idmap.tmp" && mv "$dir/$idmap.tmp" "$dir/$idmap"
fi
cp "$new" "$tmp"
# the copy names its id map by the name it was built with: verify it in place
if ! why=$(pefa-dump --verify "$tmp" 2>&1); then
    printf '%s\n' "$why" | grep -E 'FAILED|error' >&2 || printf '%s\n' "$why" | tail -n 3 >&2 # pefa-dump's words
    echo "$0: $tmp failed verification; $live unchanged" >&2
    exit 1
fi
mv "$tmp" "$live"
trap - EXIT
echo "$0: $live replaced"
