# The agent, installed from the package exactly as the test suite installs it
# (test/package/install.test.ts). CI does not build this image. From a checkout:
#   npm ci && npm pack
#   docker build -f docker/agent.Dockerfile -t hookwarden-agent .
#   docker run --restart=unless-stopped -e HOOKWARDEN_AGENT_SECRET=as_... hookwarden-agent \
#     --server https://hooks.example.com --key ak_... --bucket payments --forward-to http://billing.internal:8080/stripe
# Exit codes 3 (key/secret refused) and 4 (bucket refused) mean the configuration must change.
FROM node:24-bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY hookwarden-*.tgz /tmp/
RUN npm install -g /tmp/hookwarden-*.tgz --no-audit --no-fund && rm /tmp/hookwarden-*.tgz && npm cache clean --force
USER node
ENTRYPOINT ["hookwarden", "agent"]
