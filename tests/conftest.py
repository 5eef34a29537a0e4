import os

# Four simulated CPU devices for the sharding tests; set before anything imports jax. Single-device
# code runs on device 0 as usual.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")

# No test reads or fills the user's students cache (~/.cache/emodistill_jax); the cache test sets its own.
os.environ.setdefault("EMODISTILL_CACHE", "off")

import pytest

# The four EmoMAS scenario CSVs (not shipped with the project; docs/data.md says where to get them):
# the folder named by EMODISTILL_EMOMAS_DIR, else a `shared/data/emomas` folder beside the checkout.
EMOMAS_FILES = ("credit_recovery_scenarios.csv", "disaster_survivor_scenarios.csv",
                "education_sleep_scenarios.csv", "hospital_surgery_scenarios.csv")
EMOMAS = os.environ.get("EMODISTILL_EMOMAS_DIR") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data", "emomas")


@pytest.fixture
def emomas_dir():
  missing = [f for f in EMOMAS_FILES if not os.path.isfile(os.path.join(EMOMAS, f))]
  if missing:
    pytest.skip(f"needs the EmoMAS scenario CSVs ({', '.join(missing)} not in {os.path.normpath(EMOMAS)}): "
                "set EMODISTILL_EMOMAS_DIR to their folder (docs/data.md says where to get them)")
  return EMOMAS


def pytest_configure(config):
  config.addinivalue_line("markers", "slow: tens of seconds (a real pretrained model, e.g. SmolLM2 parity); "
                          "runs by default, deselect with -m 'not slow'")
