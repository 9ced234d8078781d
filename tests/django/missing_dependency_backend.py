"""A checkpointer module whose own import needs a package that is not installed."""

import flows_test_package_that_is_not_installed  # noqa: F401
