"""Scenarios of the four negotiation domains: record, adapters, robust loaders, synthetic generators."""

from emodistill_jax.domains.adapters import COLUMNS, FIELDS
from emodistill_jax.domains.emomas_csv import ScenarioFileError, load_emomas_csv
from emodistill_jax.domains.loading import load_scenarios
from emodistill_jax.domains.scenario import SCHEMA_VERSION, Scenario, read_jsonl, write_jsonl
from emodistill_jax.domains.spec import (DOMAINS, SPECS, DomainSpec, format_value, minutes_to_clock,
                                         parse_clock, spec)
from emodistill_jax.domains.synthetic import synthetic_scenarios
