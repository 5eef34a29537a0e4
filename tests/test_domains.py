"""Scenario loading: the four real EmoMAS CSVs (values checked by hand against the raw files), the
errors promised for corrupted copies, the JSONL format, and the synthetic generators."""

import dataclasses
import json
import os

import pytest

from emodistill_jax.domains import (DOMAINS, Scenario, ScenarioFileError, load_scenarios, parse_clock,
                                    read_jsonl, spec, synthetic_scenarios, write_jsonl)
from emodistill_jax.domains.spec import format_value, minutes_to_clock

WANTS = {"crad": -1, "disaster": 1, "hospital": 1, "student": -1}


@pytest.mark.parametrize("domain", DOMAINS)
def test_real_csv_loads_all_rows_in_order_with_direction(emomas_dir, domain):
  scenarios = load_scenarios(domain, emomas_dir)
  assert len(scenarios) == 100
  prefix = spec(domain).id_prefix
  assert [s.id for s in scenarios] == [f"{prefix}_{i:03d}" for i in range(1, 101)]
  assert [s.split for s in scenarios] == ["train"] * 80 + ["test"] * 20
  assert all(s.direction == WANTS[domain] for s in scenarios)
  assert all(s.unit == spec(domain).unit and s.domain == domain for s in scenarios)


def _by_id(emomas_dir, domain):
  return {s.id: s for s in load_scenarios(domain, emomas_dir)}


def test_crad_hand_values(emomas_dir):
  s = _by_id(emomas_dir, "crad")
  assert (s["debt_081"].x0, s["debt_081"].xstar) == (46.0, 18.0)
  assert (s["debt_001"].x0, s["debt_001"].xstar) == (159.0, 12.0)
  assert s["debt_001"].fields["creditor_name"] == "Hughes, Ortiz and Hudson"  # quoted comma
  assert s["debt_001"].fields["outstanding_balance"] == "15700"
  assert s["debt_001"].imputed == ()


def test_disaster_hand_values_and_imputations(emomas_dir):
  s = _by_id(emomas_dir, "disaster")
  assert (s["disaster_001"].x0, s["disaster_001"].xstar) == (90.0, 120.0)
  assert (s["disaster_002"].x0, s["disaster_002"].xstar) == (45.0, 90.0)
  # "Variable" endurance -> 60; ETA 100 -> xstar = max(100, 60 + 30)
  assert (s["disaster_054"].x0, s["disaster_054"].xstar, s["disaster_054"].imputed) == (60.0, 100.0, ("endurance",))
  # ETA 600 is outside [10, 500] -> 90; xstar = max(90, 300 + 30)
  assert (s["disaster_075"].x0, s["disaster_075"].xstar, s["disaster_075"].imputed) == (300.0, 330.0, ("eta",))
  assert (s["disaster_100"].x0, s["disaster_100"].xstar) == (60.0, 90.0)
  assert s["disaster_100"].imputed == ("endurance", "eta")
  # "5,Blizzard,...,Heat, Food, Antibiotics,“Storm breaks in 90 min, helicopter then. ...”"
  assert s["disaster_005"].fields["critical_needs"] == "Heat, Food, Antibiotics"
  assert s["disaster_005"].fields["key_argument"].startswith("“Storm breaks in 90 min, helicopter then.")
  # "37,Forest, Lost_hiker_sepsis_from_wound,200,300,...": a delimiter followed by a space
  assert s["disaster_037"].fields["disaster_type"] == "Forest"
  assert s["disaster_037"].fields["survivor_condition"] == "Lost_hiker_sepsis_from_wound"


def test_hospital_hand_values_and_rebuilt_text(emomas_dir):
  s = _by_id(emomas_dir, "hospital")
  assert (s["hospital_001"].x0, s["hospital_001"].xstar) == (15.0, 45.0)  # High, 45 - 30
  assert (s["hospital_003"].x0, s["hospital_003"].xstar) == (30.0, 150.0)  # Low: 120 - 90, 120 + 30
  assert (s["hospital_002"].x0, s["hospital_002"].xstar) == (28.0, 35.0)  # xstar 28 <= x0 -> x0 + 7
  h65 = s["hospital_065"]  # "N/A (listed)" waitlist, "N/A" reduction
  assert (h65.x0, h65.xstar, h65.imputed) == (30.0, 37.0, ("waitlist", "reduction"))
  f = s["hospital_001"].fields
  assert f["patient_reason"] == "Severe chest pain, inability to work"
  assert f["hospital_suggestion"] == "Consider experienced mid-level surgeon (8 years) in same department"
  f = s["hospital_041"].fields
  assert f["patient_condition"] == "Acoustic Neuroma (Small, growing)"
  assert f["required_surgery"] == "Stereotactic Radiosurgery (e.g., Gamma Knife)"
  assert f["risk_if_delayed"] == "Hearing loss, tinnitus, imbalance"
  # Row 35 has no availability-reason cell: its three text cells are risk, reason and suggestion.
  h35 = s["hospital_035"]
  assert h35.fields["surgeon_availability_reason"] == ""
  assert h35.fields["risk_if_delayed"] == "Locked knee, cannot extend"
  assert h35.fields["patient_reason"] == "Active parent, needs knee to function for childcare"
  assert h35.imputed == ("missing:Surgeon_Availability_Reason",)
  assert (h35.x0, h35.xstar) == (10.0, 40.0)
  assert s["hospital_077"].fields["decision_point"] == "Case on hold, non-surgical"


def test_student_hand_values(emomas_dir):
  s = _by_id(emomas_dir, "student")
  assert (s["student_001"].x0, s["student_001"].xstar) == (300.0, 90.0)  # 2:00 AM vs 10:30 PM
  assert (s["student_002"].x0, s["student_002"].xstar) == (270.0, 45.0)  # 1:30 AM vs 9:45 PM
  s48 = s["student_048"]  # wanted "N/A (Sleeps lightly, on alert)" -> 1:00 AM
  assert (s48.x0, s48.xstar, s48.imputed) == (240.0, 105.0, ("student_bedtime",))
  assert s48.fields["student_bedtime"] == "N/A (Sleeps lightly, on alert)"
  assert s["student_095"].fields["situation"] == "See peers with jobs, relationships, etc."


def test_clock_times():
  assert parse_clock("8:45 PM") == -15.0
  assert parse_clock("1:30 AM") == 270.0
  assert parse_clock("12:00 AM") == 180.0
  assert parse_clock("10 pm") == 60.0
  assert parse_clock("5:59 PM") == 1259.0  # before 6 PM: the next day
  assert parse_clock("N/A") is None and parse_clock("13:00 PM") is None
  assert [minutes_to_clock(m) for m in (-15, 0, 180, 270)] == ["8:45 PM", "9:00 PM", "12:00 AM", "1:30 AM"]
  assert format_value("crad", 30) == "30 days" and format_value("disaster", 1) == "1 minute"
  assert format_value("hospital", 7.5) == "7.5 days" and format_value("student", 90) == "10:30 PM"


# ------------------------------------------------------------------------------- corrupted copies

def _copy(emomas_dir, tmp_path, domain, edit):
  name = spec(domain).csv_name
  with open(os.path.join(emomas_dir, name), encoding="utf-8", newline="") as f:
    lines = f.read().split("\r\n" if domain in ("disaster", "hospital") else "\n")
  lines = edit(lines)
  path = tmp_path / name
  path.write_text("\n".join(lines), encoding="utf-8")
  return str(path)


def test_empty_file_fails(emomas_dir, tmp_path):
  path = _copy(emomas_dir, tmp_path, "crad", lambda lines: [])
  with pytest.raises(ScenarioFileError, match=r"credit_recovery_scenarios\.csv: the file is empty"):
    load_scenarios("crad", path)


def test_header_only_fails(emomas_dir, tmp_path):
  path = _copy(emomas_dir, tmp_path, "student", lambda lines: lines[:1])
  with pytest.raises(ScenarioFileError, match="a header but no scenario rows"):
    load_scenarios("student", path)


def test_wrong_header_names_the_column(emomas_dir, tmp_path):
  path = _copy(emomas_dir, tmp_path, "crad",
               lambda lines: [lines[0].replace("Debtor Target Days", "Debtor Days")] + lines[1:])
  with pytest.raises(ScenarioFileError, match=r"column 7 is 'Debtor Days', expected 'Debtor Target Days'"):
    load_scenarios("crad", path)


def test_missing_header_column(emomas_dir, tmp_path):
  path = _copy(emomas_dir, tmp_path, "student",
               lambda lines: [lines[0].replace(",Primary_Annoyance_Reason", "")] + lines[1:])
  with pytest.raises(ScenarioFileError, match=r"column 8 is '', expected 'Primary_Annoyance_Reason'"):
    load_scenarios("student", path)


def test_non_numeric_value_names_file_row_and_cell(emomas_dir, tmp_path):
  def edit(lines):
    cells = lines[5].split(",")  # data row 5: no quoted commas before the numbers
    cells[-14] = "twelve"  # Creditor Target Days
    return lines[:5] + [",".join(cells)] + lines[6:]
  path = _copy(emomas_dir, tmp_path, "crad", edit)
  with pytest.raises(ScenarioFileError, match=r"credit_recovery_scenarios\.csv, row 5: .*'Creditor Target Days'"):
    load_scenarios("crad", path)


def test_row_missing_a_number_is_never_loaded_shifted(emomas_dir, tmp_path):
  # hospital row 1 without its Days_On_Waitlist cell: everything after it would shift left.
  path = _copy(emomas_dir, tmp_path, "hospital", lambda lines: [lines[0], lines[1].replace(",High,45,", ",High,")] + lines[2:])
  with pytest.raises(ScenarioFileError, match=r"hospital_surgery_scenarios\.csv, row 1: .*'Days_On_Waitlist'"):
    load_scenarios("hospital", path)


def test_non_numeric_required_number_in_hospital_row(emomas_dir, tmp_path):
  path = _copy(emomas_dir, tmp_path, "hospital", lambda lines: [lines[0], lines[1].replace(",High,45,", ",High,forty,")] + lines[2:])
  with pytest.raises(ScenarioFileError, match=r"row 1: .*'Days_On_Waitlist' \(expected days or N/A\)"):
    load_scenarios("hospital", path)


def test_ambiguous_row_fails_naming_cells(emomas_dir, tmp_path):
  # "Earthquake, Trapped, leg": type/condition can be cut before " Trapped" or before " leg".
  row = "1,Earthquake, Trapped, leg,90,120,Water,“Hold on.”"
  path = _copy(emomas_dir, tmp_path, "disaster", lambda lines: [lines[0], row] + lines[2:])
  with pytest.raises(ScenarioFileError, match=r"row 1: ambiguous row.*'Disaster_Type', 'Survivor_Condition'"):
    load_scenarios("disaster", path)


def test_unknown_domain_and_missing_file(tmp_path):
  with pytest.raises(ValueError, match="unknown domain 'debt'"):
    load_scenarios("debt")
  with pytest.raises(ScenarioFileError, match="no such scenario file"):
    load_scenarios("crad", tmp_path / "nope.csv")


# ------------------------------------------------------------------------------- JSONL + synthetic

def test_jsonl_round_trip(tmp_path):
  scenarios = synthetic_scenarios("hospital", n=10)
  path = tmp_path / "s.jsonl"
  assert write_jsonl(scenarios, path) == 10
  assert read_jsonl(path) == scenarios
  assert load_scenarios("hospital", path) == scenarios


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(schema_version=2), r":2: field 'schema_version' is 2"),
    (lambda d: d.pop("x0"), r":2: field 'x0' must be a finite number, got None"),
    (lambda d: d.update(xstar="ten"), r":2: field 'xstar' must be a finite number"),
    (lambda d: d.update(split="dev"), r":2: field 'split' is 'dev'"),
    (lambda d: d.update(unit="hours"), r":2: field 'unit' is 'hours'"),
    (lambda d: d.update(color="red"), r":2: unknown field\(s\) color"),
    (lambda d: d.update(id="debt_001"), r":2: field 'id' 'debt_001' repeats line 1"),
])
def test_jsonl_errors_name_line_and_field(tmp_path, change, message):
  a, b = synthetic_scenarios("crad", n=2)
  record = b.to_json()
  change(record)
  path = tmp_path / "bad.jsonl"
  path.write_text(json.dumps(a.to_json()) + "\n" + json.dumps(record) + "\n")
  with pytest.raises(ValueError, match=message):
    read_jsonl(path)


def test_jsonl_bad_json_and_wrong_domain(tmp_path):
  path = tmp_path / "bad.jsonl"
  path.write_text('{"schema_version": 1,\n')
  with pytest.raises(ValueError, match=r"bad\.jsonl:1: not valid JSON"):
    read_jsonl(path)
  write_jsonl(synthetic_scenarios("crad", n=2), path)
  with pytest.raises(ValueError, match=r":1: field 'domain' is 'crad' but 'student' was asked for"):
    read_jsonl(path, "student")


@pytest.mark.parametrize("domain", DOMAINS)
def test_synthetic_sets_are_seeded_and_realistic(domain):
  a, b = load_scenarios(domain), load_scenarios(domain)
  assert a == b and len(a) == 100
  assert load_scenarios(domain, seed=1) != a
  assert [s.split for s in a].count("train") == 80
  assert all(s.direction == WANTS[domain] for s in a)
  assert all(s.imputed == () for s in a)
  lo, hi = {"crad": (5, 180), "disaster": (10, 480), "hospital": (1, 400), "student": (-30, 390)}[domain]
  assert all(lo <= min(s.x0, s.xstar) and max(s.x0, s.xstar) <= hi for s in a)
  assert len({(s.x0, s.xstar) for s in a}) > 50  # varied, not one scenario a hundred times


def test_scenario_record_properties():
  s = Scenario("x", "crad", "train", 46.0, 18.0, "days", "creditor", "debtor")
  assert (s.direction, s.gap) == (-1, 28.0)
  assert dataclasses.replace(s, xstar=46.5).gap == 1.0
