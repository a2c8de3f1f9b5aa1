"""End-to-end benchmark of the streaming service: `python -m bench` (or `make bench`).

Streams the evaluation clips, concatenated with silences, in real time through the CLI
client's code and reports final latency, partial cadence, WER against an offline baseline,
endpointing splits/merges and the server's CPU and memory.
"""
