# syntax=docker/dockerfile:1
# berth: one image for every component. `berth operator`, `berth token-service`,
# `berth retention-run`, `berth node-agent`; see `berth --help`.
#
#   docker build -t berth:dev .
#
# Runs as a numeric non-root user and needs no writable root filesystem (the chart mounts an
# emptyDir at /tmp).
ARG NODE_VERSION=24.21.0

# --- build: compile TypeScript to dist/ --------------------------------------------------------
FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: the `node` devDependency would download a second Node; the image has Node 24.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN node node_modules/typescript/bin/tsc -p tsconfig.build.json

# --- deps: production dependencies only ---------------------------------------------------------
FROM node:${NODE_VERSION}-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

# --- runtime --------------------------------------------------------------------------------------
FROM node:${NODE_VERSION}-bookworm-slim
LABEL org.opencontainers.image.title="berth" \
      org.opencontainers.image.description="Private container registries for Kubernetes: operator, token service, retention and node agent" \
      org.opencontainers.image.source="https://github.com/berth-dev/berth" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps --chown=0:0 /app/node_modules ./node_modules
COPY --from=build --chown=0:0 /app/dist ./dist
COPY --chown=0:0 package.json ./
# Files belong to root and are read-only for the process, which runs as 65532 (no login, no home).
USER 65532:65532
EXPOSE 8080 8081
# No NODE_OPTIONS here: each component sets its own V8 sizes (the chart's `nodeOptions` for the
# operator, the operator for its retention Jobs, the token service for its workers).
ENTRYPOINT ["node", "--enable-source-maps", "/app/dist/main.js"]
CMD ["--help"]
