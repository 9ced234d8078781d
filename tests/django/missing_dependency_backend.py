"""A checkpointer module whose own import needs a package that is not installed."""

# missing on purpose: the system check under test reports it
import flows_test_package_that_is_not_installed  # type: ignore[import-not-found]  # noqa: F401
