# The API image (also runs the one-shot `migrate`): the service without torch.
#   docker build -t consingan-api .
# Only api/ + core/ run here; `pip install .` with no extras pulls no torch (pyproject: torch is in [engine]).
FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app

WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY api ./api
COPY core ./core
COPY worker ./worker
COPY engine ./engine
COPY migrations ./migrations
RUN pip install . \
    && python -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('torch') is not None)" \
    && useradd --create-home --uid 10001 app

USER app
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["uvicorn", "--factory", "api.app:create_app", "--host", "0.0.0.0", "--port", "8000", "--proxy-headers", "--no-access-log"]
