# vouch as a container: docker build -t vouch . && docker run -p 3000:3000 -v vouch-data:/data vouch
# Not built in CI (no container engine there): test/packaging/container.test.ts
# checks this file, and starts its CMD and HEALTHCHECK against the built dist/.

# Both stages use the same image, so the native addons (better-sqlite3,
# argon2) built in the first run on the second's Node and glibc. 20.20.2 is
# the Node that CI tests on.
FROM node:20.20.2-bookworm-slim AS build
WORKDIR /app
# The compilers are the fallback for a platform without a prebuilt binary of
# a native addon; they stay in this stage.
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
# The manifests alone first, so that the dependency layer is reused until
# they change. Without scripts: postinstall and prepare need the sources.
COPY package.json package-lock.json ./
COPY packages/verifier/package.json packages/verifier/
COPY packages/client/package.json packages/client/
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json prisma.config.ts ./
COPY scripts/ scripts/
COPY prisma/ prisma/
COPY src/ src/
COPY packages/ packages/
# What npm ci skipped: the native addons' builds, the Prisma clients
# (postinstall: scripts/prisma-generate.ts), then dist/ and packages/*/dist.
RUN npm rebuild --no-audit --no-fund \
  && npm run postinstall \
  && npm run build
# Only the production dependencies go on to the runtime stage.
RUN npm prune --omit=dev --ignore-scripts --no-audit --no-fund

FROM node:20.20.2-bookworm-slim
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    DATA_DIR=/data \
    DATABASE_URL=file:/data/vouch.db
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules/ node_modules/
COPY --from=build /app/dist/ dist/
# The workspace packages the server imports (node_modules/@vouch/* link
# here); the account page serves @vouch/client's dist/ as its SDK.
COPY --from=build /app/packages/verifier/package.json packages/verifier/
COPY --from=build /app/packages/verifier/dist/ packages/verifier/dist/
COPY --from=build /app/packages/client/package.json packages/client/
COPY --from=build /app/packages/client/dist/ packages/client/dist/
# Read from disk at run time: the schema and migrations (applied at start),
# the reset mail's template, the account page.
COPY prisma/ prisma/
COPY templates/ templates/
COPY web/ web/
# The SQLite database and the generated master key (when VOUCH_MASTER_KEY is
# not set) live in the volume, owned by the unprivileged user.
RUN mkdir /data && chown node:node /data
USER node
VOLUME /data
EXPOSE 3000
# No curl in the slim image: Node's fetch asks the readiness route.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/health/ready').then((res) => process.exit(res.ok ? 0 : 1), () => process.exit(1))"]
# The node flags of npm start (package.json), without its build step.
CMD ["node", "--max-old-space-size=512", "--max-semi-space-size=4", "dist/server.js"]
