"""The demo site: the ``flows`` app with two demo flows, configured from the environment."""
