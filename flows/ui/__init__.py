"""The web UI: pages that are clients of flows' REST API and WebSocket.

The views only render page shells (and a flow's graph); everything a page
shows of a session — its messages, runs, timeline, questions — it reads from
the API and the session's socket, as any other client would, under the same
authentication and ownership rules.
"""
