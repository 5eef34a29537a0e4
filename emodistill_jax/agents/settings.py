"""One role's backend settings (a ConfigDict), shared by the sweep, judge, evaluation and pipeline configs."""

from ml_collections import config_dict


def agent(kind: str = "sandbox", temperature: float = 0.7, max_tokens: int = 256,
          top_p: float = 0.9) -> config_dict.ConfigDict:
  """One role's backend: "sandbox" (built in, offline) or "api" (an OpenAI-compatible endpoint).

  For "api", unset fields come from the environment: EMODISTILL_BASE_URL, EMODISTILL_MODEL and
  EMODISTILL_API_KEYS (comma-separated; keys are read only from the environment).
  """
  c = config_dict.ConfigDict()
  c.kind = kind
  c.base_url = config_dict.placeholder(str)
  c.model = config_dict.placeholder(str)
  c.temperature = temperature
  c.top_p = top_p  # nucleus sampling; 0.7 / 0.9 is the paper's reference decoder for every focal agent
  c.max_tokens = max_tokens
  c.timeout = 60.0
  c.max_concurrency = 32
  c.cache_dir = config_dict.placeholder(str)  # None: <workdir>/cache
  c.max_retries = 5  # on 429, 5xx, timeouts and connection errors (Retry-After honoured)
  c.backoff_base = 1.0
  c.backoff_max = 30.0
  c.extra_body = config_dict.ConfigDict()  # e.g. {"enable_thinking": False} for DashScope
  return c
