# SiloSpan API image. Build: docker build -t silospan .
# Run with PostgreSQL: docker run -p 8000:8000 \
#   -e SILOSPAN_DATABASE_URL=postgresql+psycopg://user:pass@db:5432/silospan \
#   -e SILOSPAN_ENVIRONMENT=production silospan
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    SILOSPAN_DATABASE_URL=sqlite:////data/silospan.db

WORKDIR /app
# The wheel carries the migrations (service/_alembic), so the source is not needed at runtime.
COPY pyproject.toml README.md alembic.ini ./
COPY service ./service
COPY alembic ./alembic
RUN pip install . && rm -rf /app/service /app/alembic \
    && useradd --system --uid 10001 silospan && mkdir /data && chown silospan /data
USER silospan
VOLUME /data
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"
# `serve` migrates the database first, then starts uvicorn.
CMD ["silospan", "serve", "--host", "0.0.0.0", "--port", "8000"]
