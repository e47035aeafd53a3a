"""Load tests of the background-removal service (locust); see README.md."""
