# The LeadPulse image: workers and the simulator (docker-compose.yml).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY streams ./streams
RUN pip install --no-cache-dir .
ENV LEADPULSE_WEB_HOST=0.0.0.0 \
    LEADPULSE_DATA_DIR=/var/lib/leadpulse
EXPOSE 6066
CMD ["leadpulse", "worker"]
