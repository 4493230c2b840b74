# syntax=docker/dockerfile:1
# Packagento Gate — production image.
# The sources run through tsx (no separate build step), so the runtime stage needs
# the production dependencies, the sources, the policy folder and nothing else.

ARG NODE_VERSION=20.19

# --- dependencies: production only, from the lock file ---------------------------
FROM node:${NODE_VERSION}-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund \
 && npm cache clean --force

# --- runtime: non-root, read-only friendly ----------------------------------------
FROM node:${NODE_VERSION}-bookworm-slim AS runtime
ENV NODE_ENV=production \
    GATE_HOST=0.0.0.0 \
    GATE_PORT=8080 \
    GATE_DATABASE_URL=file:/app/data/gate.db \
    GATE_POLICY_DIR=/app/policies
WORKDIR /app
COPY --from=deps --chown=root:root /app/node_modules ./node_modules
COPY --chown=root:root package.json ./
COPY --chown=root:root bin ./bin
COPY --chown=root:root src ./src
COPY --chown=root:root policies ./policies
# The embedded database lives on a volume owned by the unprivileged "node" user (uid 1000).
RUN mkdir -p /app/data && chown node:node /app/data
VOLUME ["/app/data"]
USER node
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.GATE_PORT || 8080) + '/_gate/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# SIGTERM drains in-flight requests; SIGHUP reloads the policy folder.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "bin/packagento-gate.mjs"]
CMD ["serve"]
