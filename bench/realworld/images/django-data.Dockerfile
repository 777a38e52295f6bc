FROM layerscan-bench/base:bookworm
COPY apt.txt /tmp/apt.txt
RUN apt-get update && grep -v '^#' /tmp/apt.txt | xargs apt-get install -y --no-install-recommends \
 && rm -rf /var/lib/apt/lists/* /tmp/apt.txt
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY django-data.txt /tmp/django-data.txt
RUN pip install -r /tmp/django-data.txt && rm /tmp/django-data.txt
COPY django-app /srv/shop
WORKDIR /srv/shop
RUN python manage.py collectstatic --noinput
CMD ["gunicorn", "shop.wsgi", "--bind", "0.0.0.0:8000"]
