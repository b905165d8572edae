"""What operators see of a running server: structured logs with a request id, Prometheus
metrics and the liveness and readiness probes."""
