#!/usr/bin/env sh
# Writes .env (git-ignored) for docker-compose.yml with freshly generated secrets, unless it exists.
#   sh deploy/compose/generate-env.sh && docker compose up -d
set -eu
cd "$(dirname "$0")/../.."
if [ -e .env ]; then
  echo ".env exists; not overwriting it" >&2
  exit 1
fi
hex() { openssl rand -hex "$1"; }
# nats-server parses these as config values: they must not start with a digit.
nats() { echo "n$(openssl rand -hex "$1")"; }
b64() { openssl rand -base64 32 | tr -d '\n'; }
umask 077
cat > .env <<ENV
POSTGRES_PASSWORD=$(hex 24)
NATS_JS_KEY=$(nats 32)
GATEWAY_NATS_PASSWORD=$(nats 24)
BUSINESS_FORWARDING_NATS_PASSWORD=$(nats 24)
CRYPTO_NATS_PASSWORD=$(nats 24)
STORAGE_NATS_PASSWORD=$(nats 24)
ADMIN_NATS_PASSWORD=$(nats 24)
OPERATOR_TOKEN=$(hex 32)
BUSINESS_FORWARDING_MASTER_KEY=$(b64)
CRYPTO_MASTER_KEY=k1:$(b64)
STORAGE_MASTER_KEY=k1:$(b64)
# Where the gateway sends verification codes (an HTTPS hook of yours). For a local try-out instead:
# NODE_ENV=development and VERIFICATION_SENDER=log (codes appear in the gateway's log).
VERIFICATION_HOOK_URL=https://verification.example.invalid/send
ENV
echo "wrote .env"
