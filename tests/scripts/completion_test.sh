#!/usr/bin/env bash
# The bash completion (cli/completion/shadan.bash) against the programs just built: what a TAB
# offers after a few command lines, and that every command of each program completes.
# usage: completion_test.sh SOURCE_DIR AGENT CONTROLLER SHADANCTL
set -uo pipefail
src=$1
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
ln -s "$2" "$bin/shadan-agent"
ln -s "$3" "$bin/shadan-controller"
ln -s "$4" "$bin/shadanctl"
export PATH=$bin:$PATH
# shellcheck source=/dev/null
source "$src/cli/completion/shadan.bash"
failed=0

# offers "LINE" -> the words a TAB at the end of LINE offers (one line, sorted).
offers() {
  read -r -a COMP_WORDS <<<"$1"
  [[ $1 == *" " ]] && COMP_WORDS+=("")
  COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
  _shadan_complete "${COMP_WORDS[0]}" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
  printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' ' | sed 's/ $//'
}
expect() {
  local line=$1 want=$2 got
  got=$(offers "$line")
  if [[ " $got " == *" $want "* ]]; then
    echo "ok: '$line<TAB>' offers $want"
  else
    echo "FAIL: '$line<TAB>' offers '$got', not $want"
    failed=1
  fi
}
expect_exactly() {
  local line=$1 want=$2 got
  got=$(offers "$line")
  if [[ $got == "$want" ]]; then echo "ok: '$line<TAB>' offers $want"; else
    echo "FAIL: '$line<TAB>' offers '$got', not exactly '$want'"
    failed=1
  fi
}

expect "shadanctl " isolate
expect "shadanctl " trust
expect_exactly "shadanctl is" isolate
expect_exactly "shadanctl ca " "init issue pin revoke"
expect_exactly "shadanctl trust " "add init remove show"
expect "shadanctl isolate office --rea" --reason
expect "shadanctl isolate --host 10.0.0.1 --dr" --drill
expect "shadanctl agents " approve
expect_exactly "shadan-agent policy " "check show"
expect "shadan-agent check-config --tls" --tls-dir
expect_exactly "shadan-controller " "check-config hash-token run"
expect_exactly "shadan-controller check-config --j" --json
expect_exactly "shadanctl --v" --version
# A file name after an option that takes one.
cd "$src" && expect "shadan-agent run --policy policies/examples/l" policies/examples/lab.json

# Every command each program lists completes from its first letters.
for program in shadanctl shadan-agent shadan-controller; do
  for command in $("$program" --help | sed -n '/^commands:/,/^$/s/^  \([a-z][a-z-]*\).*/\1/p' |
    sort -u); do
    got=$(offers "$program ${command:0:${#command}-1}")
    [[ " $got " == *" $command "* ]] || {
      echo "FAIL: $program ${command:0:${#command}-1}<TAB> does not offer $command ($got)"
      failed=1
    }
  done
done
exit "$failed"
