"""stylize-bench: model-only, end-to-end and throughput benchmarks across backends (see README.md)."""
