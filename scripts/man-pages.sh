#!/usr/bin/env bash
# Builds the man pages from their sources in docs/man/:
#   *.in   prose (NAME, DESCRIPTION, FILES, SEE ALSO) written from the docs, and one line
#          "@HELP PROGRAM ARGS...@" per command: replaced by that command's --help, run from
#          the binaries just built, as a preformatted block, so the reference part of a page
#          is the help itself and cannot drift from it. "@VERSION@": the version.
#   other  (shadan-policy.5) copied as they are.
# tests/scripts/man_pages_test.sh checks every command and option of the help is in the pages.
#
# usage: scripts/man-pages.sh OUT_DIR VERSION PROGRAM=PATH...
#   e.g. scripts/man-pages.sh build/man 0.9.0 shadan-agent=build/agents/shadan-agent ...
set -euo pipefail
[[ $# -ge 3 ]] || {
  echo "usage: scripts/man-pages.sh OUT_DIR VERSION PROGRAM=PATH..." >&2
  exit 2
}
out=$1 version=$2
shift 2
src=$(cd "$(dirname "$0")/../docs/man" && pwd)
declare -A programs
for pair in "$@"; do programs[${pair%%=*}]=${pair#*=}; done
mkdir -p "$out"

# roff: backslashes as \e, minus signs as \-, a leading . or ' made literal.
escape() { sed -e 's/\\/\\e/g' -e 's/-/\\-/g' -e "s/^\([.']\)/\\\\\&\1/"; }

for page in "$src"/*; do
  name=$(basename "$page")
  if [[ $name != *.in ]]; then
    cp "$page" "$out/$name"
    continue
  fi
  target=$out/${name%.in}
  : >"$target.tmp"
  while IFS= read -r line || [[ -n $line ]]; do
    if [[ $line =~ ^@HELP\ ([a-z-]+)(.*)@$ ]]; then
      program=${BASH_REMATCH[1]}
      read -r -a words <<<"${BASH_REMATCH[2]}"
      binary=${programs[$program]:-}
      [[ -x $binary ]] || {
        echo "man-pages.sh: $name needs $program (give $program=PATH)" >&2
        exit 1
      }
      help=$("$binary" "${words[@]}" --help) || {
        echo "man-pages.sh: $program ${words[*]} --help failed" >&2
        exit 1
      }
      {
        echo ".PP"
        echo ".nf"
        echo ".in +2"
        printf '%s\n' "$help" | escape
        echo ".in"
        echo ".fi"
      } >>"$target.tmp"
    else
      printf '%s\n' "${line//@VERSION@/$version}" >>"$target.tmp"
    fi
  done <"$page"
  mv "$target.tmp" "$target"
done
