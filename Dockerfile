# The operator image. The same steps build it without a container engine (operator/datacloud/devstack/
# image.py: mmdebstrap + umoci, used by the tests that run the operator on a real node); a unit test keeps
# the two in step (base, packages, user, virtualenv, entrypoint, command, environment, ports).
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --gid 10001 datacloud \
 && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin datacloud
COPY pyproject.toml README.md /tmp/src/
COPY operator /tmp/src/operator
# image.py installs the same packages in two steps (the dependencies in a cached base, then the project).
RUN python3 -m venv /opt/datacloud \
 && /opt/datacloud/bin/pip install --no-cache-dir --upgrade pip \
 && /opt/datacloud/bin/pip install --no-cache-dir /tmp/src \
 && rm -rf /tmp/src
ENV PATH=/opt/datacloud/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 MALLOC_ARENA_MAX=2
USER 10001:10001
EXPOSE 8000 8080 8090
ENTRYPOINT ["datacloud"]
CMD ["run", "--metrics-address=0.0.0.0", "--liveness=http://0.0.0.0:8080/healthz"]
