# The LeadPulse image: workers and the simulator (docker-compose.yml).
# The wheel is built where a C compiler is (the full Python image), with the core compiled by mypyc:
# LEADPULSE_COMPILE=mypyc fails the build rather than ship a slower, interpreted core.
FROM python:3.11 AS build
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY schemas ./schemas
COPY streams ./streams
RUN LEADPULSE_COMPILE=mypyc pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
WORKDIR /app
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
ENV LEADPULSE_WEB_HOST=0.0.0.0 \
    LEADPULSE_DATA_DIR=/var/lib/leadpulse
EXPOSE 6066
CMD ["leadpulse", "worker"]
