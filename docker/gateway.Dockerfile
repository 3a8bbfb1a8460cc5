# The gateway, installed from the package exactly as the test suite installs it
# (test/package/install.test.ts). CI does not build this image. From a checkout:
#   npm ci && npm pack                       # builds dist/, writes hookwarden-<version>.tgz
#   docker build -f docker/gateway.Dockerfile -t hookwarden .
#   docker run -p 8071:8071 -v hookwarden-data:/data hookwarden
FROM node:24-bookworm-slim
# better-sqlite3 downloads a prebuilt binary, or compiles one with these when it cannot.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY hookwarden-*.tgz /tmp/
RUN npm install -g /tmp/hookwarden-*.tgz --no-audit --no-fund && rm /tmp/hookwarden-*.tgz && npm cache clean --force
RUN mkdir /data && chown node:node /data
USER node
WORKDIR /data
# The master key file and SQLite live in /data (or give HOOKWARDEN_MASTER_KEY / HOOKWARDEN_DATABASE_URL).
ENV HOOKWARDEN_DATA_DIR=/data HOOKWARDEN_HOST=0.0.0.0 HOOKWARDEN_PORT=8071
VOLUME /data
EXPOSE 8071
ENTRYPOINT ["hookwarden"]
CMD ["serve"]
