"""The event stream: NATS JetStream between the landing files and the minute-level refresh.

broker (run a nats-server), subjects (names and stream set-up), publisher (the collector's
background publishing), replay (republish from the landing files), consumer (micro-batches
into DuckDB and the fast-segment refresh). docs/realtime.md has the picture.
"""
