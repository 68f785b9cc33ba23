# bash completion for shadanctl, shadan-agent and shadan-controller: commands, subcommands and
# options, read from the program's own --help so they cannot drift from it; file and directory
# names for the options that take one. Installed as
# /usr/share/bash-completion/completions/{shadanctl,shadan-agent,shadan-controller}.

_shadan_complete() {
  local program=$1 cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
  COMPREPLY=()
  case $prev in
    --policy | --trust | --config | --ca | --token-file | --spec | --from-policy | --scenario | \
      --out | --key | --signing-key | --authz | --report | --log | --input | --file)
      mapfile -t COMPREPLY < <(compgen -f -- "$cur")
      return
      ;;
    --state-dir | --tls-dir | --dir | --out-dir)
      mapfile -t COMPREPLY < <(compgen -d -- "$cur")
      return
      ;;
  esac
  # The command and subcommand given so far: the first two words that are not options (nor
  # an option's value).
  local words=() i word
  for ((i = 1; i < COMP_CWORD; i++)); do
    word=${COMP_WORDS[i]}
    [[ $word == -* ]] && continue
    [[ ${COMP_WORDS[i - 1]} == --* && ${COMP_WORDS[i - 1]} != *=* && i -gt 1 &&
      ${#words[@]} -gt 0 ]] && continue
    words+=("$word")
  done
  local help
  if ((${#words[@]} == 0)); then
    help=$("$program" --help 2>/dev/null)
    if [[ $cur == -* ]]; then
      mapfile -t COMPREPLY < <(compgen -W "--help --version" -- "$cur")
    else
      mapfile -t COMPREPLY < <(compgen -W "$(sed -n '/^commands:/,/^$/s/^  \([a-z][a-z-]*\).*/\1/p' \
        <<<"$help" | sort -u)" -- "$cur")
    fi
    return
  fi
  local command=${words[0]}
  help=$("$program" "$command" --help 2>/dev/null)
  if [[ $cur == -* ]]; then
    mapfile -t COMPREPLY < <(compgen -W "$(grep -oE -- '--[a-z][a-z-]*' <<<"$help" | sort -u)" \
      -- "$cur")
    return
  fi
  if ((${#words[@]} == 1)); then
    # Subcommands: "  ca issue ...", "usage: shadan-agent policy check ...".
    local subcommands
    subcommands=$(sed -nE "s/^(usage: +$program +| +($program +)?)$command +([a-z][a-z-]+)( .*)?$/\3/p" \
      <<<"$help" | sort -u)
    if [[ -n $subcommands ]]; then
      mapfile -t COMPREPLY < <(compgen -W "$subcommands" -- "$cur")
      return
    fi
  fi
  mapfile -t COMPREPLY < <(compgen -f -- "$cur")
}
complete -F _shadan_complete shadanctl shadan-agent shadan-controller
