import os

# Four simulated CPU devices for the sharding tests; set before anything imports jax. Single-device
# code runs on device 0 as usual.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")

import pytest

EMOMAS = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "emomas")


@pytest.fixture
def emomas_dir():
  if not os.path.isdir(EMOMAS):
    pytest.skip("needs the EmoMAS CSVs at ../shared/data/emomas (beside the checkout)")
  return EMOMAS


def pytest_configure(config):
  config.addinivalue_line("markers", "slow: tens of seconds (a real pretrained model, e.g. SmolLM2 parity); "
                          "runs by default, deselect with -m 'not slow'")
