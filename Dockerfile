# syntax=docker/dockerfile:1
# Packagento Gate — production image.
#
#   docker build -t packagento-gate .
#   docker run --read-only --stop-timeout 10 -v gate-data:/app/data -p 8080:8080 \
#     -e GATE_UPSTREAM_URL=… -e GATE_JWT_ISSUER=… … packagento-gate
#
# The runtime runs compiled JavaScript (dist/, built by esbuild in the build stage): no
# TypeScript loader, and nothing is written outside the data volume, so the root
# filesystem can be read-only (`--read-only`; Kubernetes `readOnlyRootFilesystem: true`).
# test/ops/image-layout.test.ts assembles exactly what the runtime stage copies and runs
# `check` and `serve` from it with a read-only TMPDIR.

# Node 24 is the active LTS line (Node 20 reached end of life in April 2026).
ARG NODE_VERSION=24

# --- build: all dependencies, compile src/ into dist/ -------------------------------
FROM node:${NODE_VERSION}-trixie-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY scripts ./scripts
COPY src ./src
RUN node scripts/build.mjs

# --- deps: production dependencies only, from the lock file -------------------------
FROM node:${NODE_VERSION}-trixie-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# No install scripts are needed: libsql ships its native driver as a prebuilt package.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force

# --- runtime: non-root, read-only root filesystem, one writable volume --------------
FROM node:${NODE_VERSION}-trixie-slim AS runtime
# The drain fits Docker's default 10 s stop timeout: after SIGTERM readyz turns 503 and
# requests are still served for GATE_SHUTDOWN_GRACE_MS (3 s here, for load balancers to
# notice), then in-flight requests get GATE_DRAIN_TIMEOUT_MS (5 s) before they are cut:
# 8 s < 10 s, so Docker never has to SIGKILL a draining gateway. Raising either means
# raising the stop timeout with it (`docker run --stop-timeout`, Compose
# `stop_grace_period`, Kubernetes `terminationGracePeriodSeconds`).
ENV NODE_ENV=production \
    GATE_HOST=0.0.0.0 \
    GATE_PORT=8080 \
    GATE_DATABASE_URL=file:/app/data/gate.db \
    GATE_POLICY_DIR=/app/policies \
    GATE_SHUTDOWN_GRACE_MS=3000 \
    GATE_DRAIN_TIMEOUT_MS=5000
WORKDIR /app
COPY --from=deps --chown=root:root /app/node_modules ./node_modules
COPY --from=build --chown=root:root /app/dist ./dist
COPY --chown=root:root package.json ./
COPY --chown=root:root bin ./bin
COPY --chown=root:root policies ./policies
# The embedded database lives on a volume owned by the unprivileged "node" user (uid 1000).
RUN mkdir -p /app/data && chown node:node /app/data
VOLUME ["/app/data"]
USER node
EXPOSE 8080
# Follows GATE_HOST / GATE_PORT (a specific GATE_HOST is checked there, a wildcard on loopback).
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "bin/healthcheck.mjs"]
# SIGTERM drains (see above); SIGHUP reloads the policy folder.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "bin/packagento-gate.mjs"]
CMD ["serve"]
