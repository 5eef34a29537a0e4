import os

import pytest

EMOMAS = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "emomas")


@pytest.fixture
def emomas_dir():
  if not os.path.isdir(EMOMAS):
    pytest.skip("needs the EmoMAS CSVs at ../shared/data/emomas (beside the checkout)")
  return EMOMAS
