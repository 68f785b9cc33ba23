#!/usr/bin/env bash
# The man pages (docs/man/, made by scripts/man-pages.sh into BUILD/man) against the programs:
# every command a program's --help lists has its section, every option any of its commands'
# --help names is in its page, every key of the policy schema is in shadan-policy(5), and
# man(1) renders each page without a warning (what lintian runs).
# usage: man_pages_test.sh SOURCE_DIR MAN_DIR AGENT CONTROLLER SHADANCTL
set -euo pipefail
src=$1 man_dir=$2
declare -A programs=([shadan-agent]=$3 [shadan-controller]=$4 [shadanctl]=$5)
declare -A pages=([shadan-agent]=shadan-agent.8 [shadan-controller]=shadan-controller.8
  [shadanctl]=shadanctl.1)
failed=0
fail() {
  echo "FAIL: $*"
  failed=1
}
roff() { sed -e 's/-/\\-/g' <<<"$1"; }  # as the page writes it

for program in "${!programs[@]}"; do
  binary=${programs[$program]} page=$man_dir/${pages[$program]}
  [[ -f $page ]] || {
    fail "$page is missing"
    continue
  }
  # The commands: "  NAME ..." lines of the "commands:" section of the top-level help.
  mapfile -t commands < <("$binary" --help | sed -n '/^commands:/,/^$/p' |
    sed -n 's/^  \([a-z][a-z-]*\).*/\1/p' | sort -u)
  ((${#commands[@]} > 0)) || fail "$program --help lists no commands"
  options=$("$binary" --help | grep -oE -- '--[a-z][a-z-]*' || true)
  for command in "${commands[@]}"; do
    grep -qxF ".SS $(roff "$command")" "$page" || fail "${pages[$program]}: no section for $command"
    options+=$'\n'$("$binary" "$command" --help | grep -oE -- '--[a-z][a-z-]*' || true)
  done
  count=0
  while read -r option; do
    [[ -n $option ]] || continue
    count=$((count + 1))
    grep -qF -- "$(roff "$option")" "$page" || fail "${pages[$program]}: does not name $option"
  done < <(sort -u <<<"$options")
  echo "ok: ${pages[$program]}: ${#commands[@]} commands, $count options"
done

# Every property name of the policy schema.
keys=$(grep -oE '"[a-z_]+": *\{' "$src/policies/schema/shadan-policy.schema.json" |
  sed 's/"\([a-z_]*\)".*/\1/' | sort -u |
  grep -vxE 'properties|items|additionalProperties|\$defs|definitions|[a-z]+Endpoint|segment|gateway|profile|managementRule|allowRule|step|if|then|else|not|oneOf|anyOf|allOf|patternProperties' || true)
missing=0
for key in $keys; do
  if ! grep -qF -- "$(roff "$key")" "$man_dir/shadan-policy.5"; then
    fail "shadan-policy.5 does not name the key $key"
    missing=1
  fi
done
((missing)) || echo "ok: shadan-policy.5 names every key of the schema ($(wc -w <<<"$keys"))"

for page in "$man_dir"/*.[158]; do
  warnings=$(LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z \
    "$page" 2>&1 >/dev/null || true)
  if [[ -n $warnings ]]; then fail "$(basename "$page"): $warnings"; else echo "ok: $(basename "$page") renders without warnings"; fi
done
exit "$failed"
