"""Other streaming recognizers, run beside ours on the same model and audio for comparison.

Each peer lives in its own virtualenv under var/peers/ (never in requirements.txt), is started as
a subprocess whose pid the benchmark measures, and has an adapter that turns its wire protocol
into our `StreamResult` so that `bench.metrics` analyses both alike.
"""
