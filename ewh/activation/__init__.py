"""Activation: membership changes (entries and exits) out to webhooks, the broker and the
pull API. changes (the change log in the warehouse), subscribers (subscribers as code),
signing, backoff, state (cursors, outbox, dead letters), dispatcher. docs/realtime.md.
"""
