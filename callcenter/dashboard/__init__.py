"""The supervisor's live wallboard: queue and agent figures pushed to the browser, and the
supervisor's control of agents (pause, resume, queue log-in and log-out).

Nothing here imports aiohttp or panoramisk: the wallboard publishes through a callable and
controls Asterisk through the `TelephonyControl` protocol.
"""
