"""flows: persistent conversational workflows for Django.

The engine (``flows.engine``) is pure Python and imports no Django; the Django
app around it lives in this package's other modules.
"""

__version__ = "0.1.0"
