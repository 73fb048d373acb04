FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /srv/realunify

RUN useradd --create-home --uid 10001 realunify
COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY workers ./workers
COPY migrations ./migrations
COPY templates ./templates
COPY static ./static
COPY demo ./demo
# Editable, so the package finds templates, migrations and the demo data beside it.
RUN pip install -e . && mkdir -p var && chown realunify var
# The data folder holds uploaded images; web and worker containers share it as a volume.
VOLUME ["/srv/realunify/var"]

USER realunify
EXPOSE 8000
CMD ["uvicorn", "app.main:app", "--host", "0.0.0.0", "--port", "8000", "--proxy-headers"]
