"""hrm-bench: side-by-side latency/throughput of every backend on the same weights, plus the device floor."""
