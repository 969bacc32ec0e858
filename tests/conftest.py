# Service fixtures (Postgres, Redis, moto S3, API clients) live in tests/service_fixtures.py; they are lazy,
# so engine tests that do not ask for them need no database.
pytest_plugins = ["tests.service_fixtures"]
