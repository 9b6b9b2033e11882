FROM python:3.11-slim

WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

COPY . .
RUN useradd --create-home observer && mkdir -p /app/data && chown observer /app/data
USER observer

ENV OBSERVER_HOST=0.0.0.0 \
    OBSERVER_PORT=8400 \
    OBSERVER_DATA_DIR=/app/data
# The audit trail, idempotency keys and the embedded backend's data live here.
VOLUME ["/app/data"]
EXPOSE 8400
CMD ["python", "main.py"]
