from django.apps import AppConfig


class StoreAppConfig(AppConfig):
    name = "tests.storeapp"
    label = "storeapp"
    default_auto_field = "django.db.models.BigAutoField"
