# The bench's base: the debootstrap rootfs (imported as layerscan-bench/rootfs) plus npm, fetched
# from the npm registry as Node's own images ship it (Debian's npm package is 400 node-* packages).
# The host's CA bundle replaces the rootfs's (the same where no TLS-inspecting proxy sits between
# this machine and the registries), and pip and npm are pointed at it.
FROM layerscan-bench/rootfs:bookworm
COPY generated/host-ca.crt /etc/ssl/certs/ca-certificates.crt
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
ARG NPM_VERSION=10.9.0
RUN python3 -c "import urllib.request as u; u.urlretrieve('https://registry.npmjs.org/npm/-/npm-${NPM_VERSION}.tgz', '/tmp/npm.tgz')" \
 && mkdir -p /usr/local/lib/node_modules/npm \
 && tar -xzf /tmp/npm.tgz -C /usr/local/lib/node_modules/npm --strip-components=1 --no-same-owner \
 && ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
 && rm /tmp/npm.tgz && node --version && npm --version
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false
