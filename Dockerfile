# The operator image. Not buildable on the development machines (no container engine there); the chart's
# default image (datacloud/operator:<appVersion>) is what this file builds.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN python -m venv /opt/datacloud \
 && /opt/datacloud/bin/pip install --no-cache-dir --upgrade pip \
 && /opt/datacloud/bin/pip install --no-cache-dir .

FROM python:3.11-slim
RUN groupadd --gid 10001 datacloud && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin datacloud
COPY --from=build /opt/datacloud /opt/datacloud
ENV PATH=/opt/datacloud/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER 10001:10001
EXPOSE 8000 8080 8090
ENTRYPOINT ["datacloud"]
CMD ["run", "--metrics-address=0.0.0.0", "--liveness=http://0.0.0.0:8080/healthz"]
