"""Damaged input files fail with one error naming the file (and line where there is one)."""

import os
import shutil

import pytest

from emodistill_jax.domains.emomas_csv import load_emomas_csv
from emodistill_jax.errors import InputFileError
from emodistill_jax.lm import load_pretrained
from emodistill_jax.lm.tokenizer import load_tokenizer
from emodistill_jax.serving.tiny import make_tiny_chat_model


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
  return make_tiny_chat_model(tmp_path_factory.mktemp("tiny") / "model")


def _damaged_copy(src, dst, name, keep_fraction):
  shutil.copytree(src, dst)
  path = os.path.join(dst, name)
  data = open(path, "rb").read()
  with open(path, "wb") as f:
    f.write(data[:int(len(data) * keep_fraction)])
  return path


def test_truncated_config_json(tiny_folder, tmp_path):
  path = _damaged_copy(tiny_folder, tmp_path / "m", "config.json", 0.5)
  with pytest.raises(InputFileError, match=f"^{path}: not valid JSON at line \\d+, column \\d+ .*truncated"):
    load_pretrained(str(tmp_path / "m"))


def test_truncated_tokenizer_json(tiny_folder, tmp_path):
  path = _damaged_copy(tiny_folder, tmp_path / "m", "tokenizer.json", 0.3)
  with pytest.raises(InputFileError, match=f"^{path}: not valid JSON at line"):
    load_tokenizer(str(tmp_path / "m"))


@pytest.mark.parametrize("keep", [0.5, 0.0001])  # the tensors cut off; the header itself cut off
def test_truncated_safetensors(tiny_folder, tmp_path, keep):
  path = _damaged_copy(tiny_folder, tmp_path / "m", "model.safetensors", keep)
  with pytest.raises(InputFileError, match=f"^{path}: not a readable safetensors file .*damaged or truncated"):
    load_pretrained(str(tmp_path / "m"))


def test_csv_with_a_non_utf8_byte_names_the_line(emomas_dir, tmp_path):
  raw = open(os.path.join(emomas_dir, "credit_recovery_scenarios.csv"), "rb").read()
  lines = raw.split(b"\n")
  lines[3] = lines[3].replace(b"a", b"\xe9", 1)  # latin-1 e-acute in the third data line
  bad = tmp_path / "credit_recovery_scenarios.csv"
  bad.write_bytes(b"\n".join(lines))
  with pytest.raises(InputFileError) as e:
    load_emomas_csv(bad, "crad")
  assert str(e.value).startswith(f"{bad}, line 4: byte b'\\xe9' at offset ") and "is not utf-8-sig" in str(e.value)


@pytest.mark.parametrize("value", ["-5", "0", "1e308"])
def test_csv_target_out_of_range_names_row_and_cell(emomas_dir, tmp_path, value):
  import csv
  with open(os.path.join(emomas_dir, "credit_recovery_scenarios.csv"), encoding="utf-8-sig", newline="") as f:
    rows = list(csv.reader(f))
  col = rows[0].index("Creditor Target Days")
  n = next(i for i in range(1, len(rows)) if len(rows[i]) == len(rows[0]))  # a row whose cells are all plain
  rows[n][col] = value
  bad = tmp_path / "credit_recovery_scenarios.csv"
  with open(bad, "w", encoding="utf-8", newline="") as f:
    csv.writer(f).writerows(rows)
  with pytest.raises(InputFileError) as e:
    load_emomas_csv(bad, "crad")
  assert str(e.value) == (f"credit_recovery_scenarios.csv, row {n}: cell 'Creditor Target Days': {value!r} is outside "
                          "the plausible range [1, 3650]")


def test_a_row_with_one_fragment_per_column_is_not_taken_at_face_value(emomas_dir):
  # hospital row 70 has 14 fragments for 14 columns: no availability reason, and a comma inside the patient's
  # reason ("Annoying recurrent episodes, wants definitive fix"); one fragment per column would shift 3 cells
  from emodistill_jax.domains import load_scenarios
  s = {x.id: x for x in load_scenarios("hospital", emomas_dir)}["hospital_070"]
  assert s.fields["surgeon_availability_reason"] == "" and "missing:Surgeon_Availability_Reason" in s.imputed
  assert s.fields["risk_if_delayed"] == "Painful swelling with meals"
  assert s.fields["patient_reason"] == "Annoying recurrent episodes, wants definitive fix"
