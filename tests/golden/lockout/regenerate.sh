#!/bin/sh
# Regenerates every NAME.json here from NAME.nft: loads the ruleset into a throwaway network
# namespace (unshare -n; never the host's) and saves `nft -j list ruleset`. Needs root.
set -eu
cd "$(dirname "$0")"
for source in *.nft; do
  name=${source%.nft}
  unshare -n sh -c "nft -f '$source' && nft -j list ruleset" | python3 -m json.tool --indent 1 > "$name.json"
done
