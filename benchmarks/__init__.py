"""`make bench`: convtrain against PyTorch on this CPU (run with `python -m benchmarks.run`)."""
