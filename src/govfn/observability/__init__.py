"""What a pod tells about itself: Prometheus metrics and the one-line-per-invocation log."""
