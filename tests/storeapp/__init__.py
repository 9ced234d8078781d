"""A site's own storage tables: the abstract models of ``flows.base_models`` in another app.

The conformance suite runs ``DjangoCheckpointer`` on them (the ``django-storeapp``
backend), so what docs/django.md promises about swapping the models is tested.
"""
