#!/usr/bin/env bash
# Creates the relay's secrets in a namespace with freshly generated values, once: a secret that already
# exists is left alone (re-running never rotates anything; docs/operations.md says how to rotate).
# No value is printed or written to disk. Needs kubectl (pointing at the cluster) and openssl.
#
#   deploy/scripts/create-secrets.sh <namespace> [REGION...]     e.g.  create-secrets.sh relay DE
#
# Regions are 2-letter codes; each needs a CloudNativePG cluster relay-db-<region lower-case>
# (see deploy/overlays/production/region-de.yaml).
set -euo pipefail
ns="${1:?usage: create-secrets.sh <namespace> [REGION...]}"
shift
regions=("$@")

rand_hex() { openssl rand -hex "$1"; }
# nats-server reads these values from its environment as config values: a leading digit would make one
# a number (or a parse error), so NATS secrets start with a letter.
nats_secret() { echo "n$(openssl rand -hex "$1")"; }
rand_b64_32() { openssl rand -base64 32 | tr -d '\n'; }

exists() { kubectl -n "$ns" get secret "$1" >/dev/null 2>&1; }
create() { # create <name> [kubectl create secret generic args...]
  local name="$1"
  shift
  if exists "$name"; then
    echo "secret $name exists, kept"
    return
  fi
  kubectl -n "$ns" create secret generic "$name" "$@" >/dev/null
  echo "secret $name created"
}

kubectl get namespace "$ns" >/dev/null 2>&1 || kubectl create namespace "$ns" >/dev/null

# NATS: one password per service user, the operators' admin user, and the JetStream store key.
create relay-nats-users \
  --from-literal=gateway="$(nats_secret 24)" \
  --from-literal=business-forwarding="$(nats_secret 24)" \
  --from-literal=crypto="$(nats_secret 24)" \
  --from-literal=storage="$(nats_secret 24)" \
  --from-literal=admin="$(nats_secret 24)"
create relay-nats-encryption --from-literal=key="$(nats_secret 32)"

# PostgreSQL: one role per service (CloudNativePG sets the password from the basic-auth secret; the
# service reads the full connection URI from "uri").
db_secret() { # db_secret <secret> <role> <host>
  local pw
  pw="$(rand_hex 24)"
  create "$1" --type=kubernetes.io/basic-auth \
    --from-literal=username="$2" --from-literal=password="$pw" \
    --from-literal=uri="postgres://$2:$pw@$3:5432/relay"
}
db_secret relay-db-gateway gateway relay-db-rw
db_secret relay-db-business-forwarding business_forwarding relay-db-rw
db_secret relay-db-crypto crypto relay-db-rw
db_secret relay-db-storage storage relay-db-rw

# Local Storage regions: the storage role on each regional cluster, and the list storage reads.
region_urls=""
for r in "${regions[@]}"; do
  lower="$(echo "$r" | tr 'A-Z' 'a-z')"
  db_secret "relay-db-$lower-storage" storage "relay-db-$lower-rw"
  uri="$(kubectl -n "$ns" get secret "relay-db-$lower-storage" -o jsonpath='{.data.uri}' | base64 -d)"
  region_urls="${region_urls:+$region_urls,}$r=$uri"
done

# Master keys wrap the per-business data keys: one per service that encrypts at rest.
create relay-business-forwarding-secrets \
  --from-literal=OPERATOR_TOKEN="$(rand_hex 32)" \
  --from-literal=MASTER_KEY="$(rand_b64_32)"
create relay-crypto-secrets --from-literal=MASTER_KEY="k$(date +%Y%m%d):$(rand_b64_32)"
storage_args=(--from-literal=MASTER_KEY="k$(date +%Y%m%d):$(rand_b64_32)")
[ -n "$region_urls" ] && storage_args+=(--from-literal=STORAGE_REGION_DATABASE_URLS="$region_urls")
create relay-storage-secrets "${storage_args[@]}"

# The gateway's verification hook token is the operator's own: create relay-gateway-secrets with
# VERIFICATION_HOOK_TOKEN when the hook needs one (it is optional).
echo "done: secrets in namespace $ns"
