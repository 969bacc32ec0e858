# Service fixtures (Postgres, Redis, moto S3, API clients) live in tests/service_fixtures.py; they are lazy,
# so engine tests that do not ask for them need no database.
import torch

pytest_plugins = ["tests.service_fixtures"]

# The tests train tiny models: one intra-op thread is as fast as two on them, and two threads spin against
# the worker processes the e2e tests start on a 2-core machine (measured: engine tests 94 s -> 22 s).
torch.set_num_threads(1)
