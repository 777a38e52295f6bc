FROM layerscan-bench/base:bookworm
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY pypi-top.txt /tmp/pypi-top.txt
RUN pip install --no-deps -r /tmp/pypi-top.txt && rm /tmp/pypi-top.txt
