# The callcenter application image: web app and telephony (`callcenter serve`), the channel
# workers and `callcenter migrate`. See the README's "Production" section and docker-compose.yml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --system --create-home --home-dir /var/lib/callcenter callcenter

# The package finds migrations/, web/, asterisk-config/ and dialplan/ next to itself, so the
# source tree is installed in place (editable) rather than copied into site-packages.
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY callcenter ./callcenter
COPY migrations ./migrations
COPY web ./web
COPY asterisk-config ./asterisk-config
COPY dialplan ./dialplan
RUN pip install -e . && python -c "import callcenter.serve, callcenter.workers"

COPY docker/app/entrypoint.sh docker/app/healthz.py /usr/local/lib/callcenter/
USER callcenter
ENV CALLCENTER_DATA_DIR=/var/lib/callcenter
ENTRYPOINT ["/usr/local/lib/callcenter/entrypoint.sh"]
CMD ["serve"]
