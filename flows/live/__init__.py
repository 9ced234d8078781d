"""Live events over WebSockets (Channels): every watcher of a session sees every run on it."""
