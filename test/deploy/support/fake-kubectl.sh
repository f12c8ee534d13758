#!/usr/bin/env bash
# A stand-in for kubectl, for testing deploy/scripts/create-secrets.sh where no cluster runs: it keeps
# secrets as files under $KUBECTL_STATE/<name>/<key> and answers the few calls the script makes.
set -euo pipefail
state="${KUBECTL_STATE:?}"
args=("$@")
if [ "${args[0]}" = "-n" ]; then args=("${args[@]:2}"); fi
case "${args[0]} ${args[1]}" in
  "get namespace" | "create namespace") exit 0 ;;
  "get secret")
    dir="$state/${args[2]}"
    [ -d "$dir" ] || exit 1
    if [ "${args[3]:-}" = "-o" ]; then
      key="$(echo "${args[4]}" | sed -E 's/.*\.data\.([A-Za-z0-9_-]+)\}$/\1/')"
      base64 -w0 <"$dir/$key"
    fi
    exit 0
    ;;
  "create secret")
    dir="$state/${args[3]}"
    mkdir -p "$dir"
    for a in "${args[@]:4}"; do
      case "$a" in
        --from-literal=*)
          kv="${a#--from-literal=}"
          printf '%s' "${kv#*=}" >"$dir/${kv%%=*}"
          ;;
        --type=*) printf '%s' "${a#--type=}" >"$dir/.type" ;;
      esac
    done
    exit 0
    ;;
esac
echo "fake kubectl: unexpected call: $*" >&2
exit 2
