FROM layerscan-bench/base:bookworm
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY sdks-pypi.txt /tmp/sdks-pypi.txt
RUN pip install -r /tmp/sdks-pypi.txt && rm /tmp/sdks-pypi.txt
WORKDIR /app
COPY generated/sdks-npm/package.json /app/package.json
RUN npm install
