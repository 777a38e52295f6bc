# The planted image: a handful of packages from each ecosystem, and a secret planted each way a
# build puts one into a package tree (bench/realworld_plants.py writes generated/plants/).
# Every planted secret must be reported untriaged.
FROM layerscan-bench/base:bookworm
RUN apt-get update && apt-get install -y --no-install-recommends openssh-client && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
ARG SP=/opt/venv/lib/python3.11/site-packages
COPY slice-pypi.txt /tmp/slice-pypi.txt
COPY generated/plants/requests_extra.py /tmp/plants/requests_extra.py
# pypi-new-file-in-package: a file no RECORD lists, in the layer that installed the package
RUN pip install -r /tmp/slice-pypi.txt && cp /tmp/plants/requests_extra.py $SP/requests/_extra.py
# pypi-local-dir: the image author's own package, installed from a directory (direct_url.json)
COPY generated/plants/acme-billing /src/acme-billing
RUN pip install /src/acme-billing
# pypi-patched: a package file changed by a later layer (its digest no longer matches RECORD)
COPY generated/plants/requests-patch.py /tmp/plants/requests-patch.py
RUN cat /tmp/plants/requests-patch.py >> $SP/requests/__version__.py
# pypi-new-file: a module dropped straight into site-packages
COPY generated/plants/acme_settings.py $SP/acme_settings.py
WORKDIR /app
COPY generated/plants/package.json /app/package.json
COPY generated/plants/vendor /app/vendor
COPY generated/plants/deploy-settings.json /tmp/plants/deploy-settings.json
# npm-file-dep (acme-config from file:vendor/...tgz) and npm-top-level (a file directly in
# node_modules/, in the layer that installed the packages)
RUN npm install && cp /tmp/plants/deploy-settings.json node_modules/deploy-settings.json
# npm-later-layer: a new file in a package's directory, written by a later layer
COPY generated/plants/express-deploy.js /app/node_modules/express/lib/deploy.js
# npm-patched: a package file changed by a later layer
COPY generated/plants/debug-patch.js /tmp/plants/debug-patch.js
RUN cat /tmp/plants/debug-patch.js >> node_modules/debug/src/index.js
