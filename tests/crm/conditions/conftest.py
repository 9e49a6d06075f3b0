from tests.crm.segments.conftest import frozen_now  # noqa: F401  (the segments' frozen clock)
