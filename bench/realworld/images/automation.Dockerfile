FROM layerscan-bench/base:bookworm
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY automation.txt /tmp/automation.txt
RUN pip install -r /tmp/automation.txt && rm /tmp/automation.txt
