# syntax=docker/dockerfile:1
# One image for the four services and the migrations; the command picks what runs:
#   node dist/apps/<gateway|business-forwarding|crypto|storage>/src/main.js
#   node tools/migrate.mjs
# Debian (glibc) base: @signalapp/libsignal-client ships its native library for glibc.
ARG NODE_IMAGE=node:24-bookworm-slim

# 1. Every dependency, to compile.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund

# 2. Compile apps and libs to dist/ (tsc + path aliases rewritten to relative imports).
FROM deps AS build
COPY tsconfig.base.json tsconfig.build.json ./
COPY tools/build.mjs tools/build.mjs
COPY libs libs
COPY apps apps
RUN node tools/build.mjs

# 3. Production dependencies only.
FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# 4. Runtime: compiled code and production dependencies, owned by root and read-only to the
# unprivileged user the services run as (uid 10001; Kubernetes sets the same and a read-only root fs).
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY tools/migrate.mjs tools/migrate.mjs
USER 10001:10001
EXPOSE 8080 8081 8082 8083
CMD ["node", "dist/apps/gateway/src/main.js"]
