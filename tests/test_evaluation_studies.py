"""Studies (`evaluation.studies`): transfer matrix and tournaments on the sandbox with stand-in selectors
and a tiny random counterparty model (seconds), then the kappa sweep, tournament and transfer launchers
after a toy pipeline run (slow: the pipeline builds a student and the sweep trains five JPO adapters)."""

import fcntl
import json
import math
import os
import shutil
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from ml_collections import config_dict
from safetensors.numpy import load_file

from benchmarks.sweep import make_counterparty_model
from configs import pipeline as pipeline_config
from configs import study as study_config
from emodistill_jax.agents.settings import agent
from emodistill_jax.domains import load_scenarios
from emodistill_jax.emotions import EMOTIONS
from emodistill_jax.evaluation import (Components, by_name, episode_metrics, fixed, kappa_sweep, run_method, runner,
                                       tournament, transfer_matrix)
from emodistill_jax.evaluation import report
from emodistill_jax.evaluation.methods import slug
from emodistill_jax.evaluation.stats import kappa_sweep_table
from emodistill_jax.evaluation.studies import kappa_folder, kappa_markdown, plot_kappa_sweep
from emodistill_jax.iql import Selector
from emodistill_jax.iql.networks import Policy
from emodistill_jax.iql.state import STATE_DIM
from emodistill_jax.pipeline import run_pipeline
from emodistill_jax.pipeline.studies import run_study
from emodistill_jax.storage import read_records

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOMAINS = ("crad", "disaster")
PREFERRED = {"crad": "anger", "disaster": "joy"}  # what each domain's stand-in selector always picks
IQL, RANDOM = by_name(["IQL", "Random"])
PNG = b"\x89PNG\r\n\x1a\n"


def same(a, b) -> bool:
  """Equal metrics dicts, nan included (a failed-only cell has Outcomes nan)."""
  return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def held_out(domain: str, n: int = 2):
  return [s for s in load_scenarios(domain, None) if s.split == "test"][:n]


def episodes_in(folder, method):
  return read_records(os.path.join(folder, slug(method.name), "episodes.jsonl"), repair=False)


def no_negotiation(*args, **kwargs):
  """Patched over `runner.method_negotiation`: a resumed study must only read its episodes back."""
  raise AssertionError("a finished study negotiated (or trained) again")


@pytest.fixture(scope="module")
def selectors(tmp_path_factory):
  """One stand-in IQL selector per domain that always picks that domain's PREFERRED emotion, so each
  transfer cell shows whose selector it used."""
  root = tmp_path_factory.mktemp("selectors")
  out = {}
  for i, domain in enumerate(DOMAINS):
    params = Policy(8).init(jax.random.key(i), jnp.zeros((1, STATE_DIM)))["params"]
    params["Dense_0"]["bias"] = jnp.zeros(len(EMOTIONS)).at[EMOTIONS.index(PREFERRED[domain])].set(100.0)
    Selector(params, hidden_dim=8).save(str(root / domain))
    out[domain] = str(root / domain)
  return out


@pytest.fixture(scope="module")
def tiny_counterparty(tmp_path_factory):
  """A tiny random Qwen2 + ChatML BPE folder (no torch), to play the counterparty."""
  return make_counterparty_model(tmp_path_factory.mktemp("counterparty") / "tiny_cp", vocab_size=512, context=2048)


# ---------------------------------------------------------------------------------------------
# Transfer matrix


def test_transfer_matrix_cells_are_paired_direct_runs_and_resume(tmp_path, selectors, monkeypatch):
  def make(src, dst):
    return Components(dst, held_out(dst), iterations=2, selector_path=selectors[src])

  study = str(tmp_path / "study")
  methods = (IQL, RANDOM, fixed("anger"))
  matrices = {m.name: transfer_matrix(DOMAINS, make, m, study) for m in methods}
  for method in methods:
    matrix = matrices[method.name]
    assert list(matrix) == list(DOMAINS) and all(list(row) == list(DOMAINS) for row in matrix.values())
    for src in DOMAINS:
      for dst in DOMAINS:
        cell = episodes_in(os.path.join(study, "transfer", f"{src}_to_{dst}"), method)
        direct = run_method(method, make(src, dst), str(tmp_path / "direct" / f"{src}_to_{dst}"), progress=False)
        assert cell == [e.to_json() for e in direct]  # same contexts, same episodes
        assert same(matrix[src][dst], episode_metrics(direct))
        assert matrix[src][dst]["episodes"] == 4  # 2 held-out scenarios x 2 iterations
        assert [e["scenario_id"] for e in cell] == [s.id for s in held_out(dst) for _ in range(2)]
        assert {e["domain"] for e in cell} == {dst}
        if method is IQL:  # the trained-on domain's selector is the one used
          assert {x for e in cell for x in e["emotion_sequence"]} == {PREFERRED[src]}
    if method is not IQL:  # nothing trained is used, so the trained-on domain cannot matter
      assert same(matrix["crad"], matrix["disaster"])

  files = {p: open(p, "rb").read() for p in _episode_files(study)}
  assert len(files) == 3 * 4
  monkeypatch.setattr(runner, "method_negotiation", no_negotiation)
  for method in methods:
    assert same(transfer_matrix(DOMAINS, make, method, study), matrices[method.name])
  assert {p: open(p, "rb").read() for p in _episode_files(study)} == files  # nothing appended


def _episode_files(folder):
  return sorted(os.path.join(d, f) for d, _, names in os.walk(folder) for f in names if f == "episodes.jsonl")


# ---------------------------------------------------------------------------------------------
# Tournament


def student_counterparty(path):
  c = config_dict.ConfigDict()
  c.kind, c.path, c.adapter = "student", str(path), None
  return c


def test_tournament_sandbox_cell_is_the_plain_evaluation_and_a_student_counterparty_plays(
    tmp_path, selectors, tiny_counterparty, monkeypatch):
  comp = Components("crad", held_out("crad"), iterations=1, selector_path=selectors["crad"], max_new_tokens=8,
                    max_messages=6)
  focals = {"IQL": (IQL, comp), "Fixed:anger": (fixed("anger"), comp)}
  counterparties = {"sandbox": agent("sandbox"), "tiny student": student_counterparty(tiny_counterparty)}
  study = str(tmp_path / "study")
  loads = []
  monkeypatch.setattr(Selector, "load", classmethod(lambda cls, folder, real=Selector.load: loads.append(folder)
                                                   or real(folder)))
  result = tournament(focals, counterparties, study)
  assert loads == [selectors["crad"]]  # loaded once for both counterparties, not once per cell
  assert {f: list(row) for f, row in result.items()} == {f: ["sandbox", "tiny student"] for f in focals}
  for name, (method, c) in focals.items():
    plain = run_method(method, c, str(tmp_path / "plain"), progress=False)  # counterparty None: the sandbox
    assert same(result[name]["sandbox"], episode_metrics(plain))
    sandbox = episodes_in(os.path.join(study, "tournament", f"{slug(name)}_vs_sandbox"), method)
    assert sandbox == [e.to_json() for e in plain]
    student = episodes_in(os.path.join(study, "tournament", f"{slug(name)}_vs_tiny_student"), method)
    cell = result[name]["tiny student"]
    assert cell["episodes"] == 2 and all(math.isfinite(cell[k]) for k in ("success", "utility", "rounds"))
    assert {e["models"]["counterparty"] for e in student} == {"tiny_cp"}
    assert all(e["rounds"] <= 6 for e in student)
    # paired: the focal opening depends only on the context, not on who answers it
    assert [e["messages"][0] for e in student] == [e["messages"][0] for e in sandbox]
    assert [e["messages"][1]["text"] for e in student] != [e["messages"][1]["text"] for e in sandbox]

  # stored results redraw without a negotiation: JSON -> table and heatmap
  path = tmp_path / "tournament.json"
  path.write_text(json.dumps(report._jsonable(result)))
  monkeypatch.setattr(runner, "method_negotiation", no_negotiation)
  assert same(tournament(focals, counterparties, study), result)  # resumed: read back
  stored = json.loads(path.read_text())
  utility = {f: {c: m["utility"] for c, m in row.items()} for f, row in stored.items()}
  table = report.matrix_table(utility, corner="focal \\ counterparty")
  assert table.splitlines()[0] == "| focal \\ counterparty | sandbox | tiny student |"
  assert f"| IQL | {result['IQL']['sandbox']['utility']:.3f} |" in table
  png = report.plot_heatmap(utility, str(tmp_path / "tournament.png"), title="utility")
  assert open(png, "rb").read()[:8] == PNG


# ---------------------------------------------------------------------------------------------
# Kappa sweep pieces that need no training


def test_kappa_table_and_plot_from_stored_results(tmp_path):
  results = {"0": {"episodes": 3, "success": 0.5, "success_ci_low": 0.1, "success_ci_high": 0.9, "utility": 0.2,
                   "utility_std": 0.1, "utility_ci_low": 0.1, "utility_ci_high": 0.3, "rounds": 8.0, "outcomes": None},
             "1": {"episodes": 3, "success": 1.0, "utility": 0.4, "rounds": 6.0}, "0.25": {"utility": math.nan}}
  md = kappa_markdown(results).splitlines()
  assert [line.split(" | ")[0] for line in md[2:]] == ["| 0", "| 0.25", "| 1"]
  assert "**0.400**" in md[4] and "| -- |" in md[2] and "50.0% [0.10, 0.90]" in md[2]
  assert open(plot_kappa_sweep(results, str(tmp_path / "k.png")), "rb").read()[:8] == PNG
  assert [kappa_folder(k) for k in (0, 0.25, 0.5, 0.75, 1.0)] == ["kappa_0", "kappa_0.25", "kappa_0.5", "kappa_0.75",
                                                                  "kappa_1"]


def test_kappa_sweep_rejects_methods_and_stages_without_kappa(tmp_path):
  comp = Components("crad", held_out("crad"))
  jpo = pipeline_config.get_config("smoke").jpo
  with pytest.raises(ValueError, match="uses no trained adapter"):
    kappa_sweep(jpo, comp, str(tmp_path), method="IQL")
  with pytest.raises(ValueError, match="kappa only exists in the jpo stage"):
    kappa_sweep(pipeline_config.get_config("smoke").sft, comp, str(tmp_path))
  with pytest.raises(ValueError, match="data.sweep, model.path, reference_adapter not set"):
    kappa_sweep(jpo, comp, str(tmp_path))  # unwired: each kappa would build its own student


def test_study_config_presets():
  studies = {"kappa": "kappa", "kappa_smoke": "kappa", "smoke": "kappa", "transfer": "transfer",
             "transfer_smoke": "transfer", "tournament": "tournament", "tournament_smoke": "tournament"}
  assert {p: study_config.get_config(p).study for p in studies} == studies
  assert tuple(study_config.get_config("kappa").kappas) == (0.0, 0.25, 0.5, 0.75, 1.0)
  assert study_config.get_config("kappa").pipeline.preset == "sandbox"
  assert study_config.get_config("smoke").pipeline.preset == "smoke"
  with pytest.raises(ValueError, match="unknown preset"):
    study_config.get_config("kappa_paper")


def test_study_names_the_missing_pipeline(tmp_path):
  c = study_config.get_config("kappa_smoke")
  c.pipeline_workdir = str(tmp_path / "nothing")
  with pytest.raises(FileNotFoundError, match="launchers.pipeline --config=configs/pipeline.py:smoke"):
    run_study(c, str(tmp_path / "out"))
  os.makedirs(tmp_path / "empty")
  c.pipeline_workdir = str(tmp_path / "empty")
  with pytest.raises(FileNotFoundError, match="stage\\(s\\) sweep, iql, student, sft not finished"):
    run_study(c, str(tmp_path / "out"))


# ---------------------------------------------------------------------------------------------
# After a toy pipeline run (slow)


@pytest.fixture(scope="module")
def pipeline_dir(tmp_path_factory):
  """The smoke pipeline with only what the studies read: sweep, IQL selector, student and SFT adapter."""
  c = pipeline_config.get_config("smoke")
  for stage in ("sft_free", "jpo", "jpo_base", "jpo_free", "alol", "emotion_study"):
    c.stages[stage] = False
  c.eval.methods = ("IQL",)
  c.student.student.steps = 10
  c.iql.iql.steps = 100
  root = tmp_path_factory.getbasetemp()
  if os.environ.get("PYTEST_XDIST_WORKER"):  # the session folder all workers share: built once, then reused
    root = root.parent
  workdir = str(root / "studies_pipeline")
  with open(workdir + ".lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    run_pipeline(c, workdir, echo=lambda *_: None)  # finished stages are skipped
  return workdir


@pytest.mark.slow
def test_kappa_study_launcher_trains_five_adapters_and_resumes(pipeline_dir, tmp_path, monkeypatch):
  workdir = tmp_path / "kappa"
  result = subprocess.run([sys.executable, "-m", "launchers.study", "--config=configs/study.py:kappa_smoke",
                           f"--config.pipeline_workdir={pipeline_dir}", f"--workdir={workdir}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=900)
  assert result.returncode == 0, result.stderr[-3000:]
  stored = json.loads((workdir / "kappa_sweep.json").read_text())
  assert list(stored) == ["0", "0.25", "0.5", "0.75", "1"]
  for k, metrics in stored.items():
    assert metrics["episodes"] == 3  # smoke: 3 held-out scenarios x 1 iteration
    assert all(math.isfinite(metrics[key]) for key in ("success", "utility", "utility_std", "rounds")), k
    assert metrics["adapter"] == str(workdir / f"kappa_{k}" / "adapter")
    marker = json.loads((workdir / f"kappa_{k}" / "kappa.json").read_text())
    assert marker["kappa"] == float(k) and marker["settings"]["train"]["kappa"] == float(k)
    assert marker["reference"] == os.path.join(pipeline_dir, "sft", "adapter") and marker["steps"] == 4
  a0 = load_file(str(workdir / "kappa_0" / "adapter" / "adapter_model.safetensors"))
  a1 = load_file(str(workdir / "kappa_1" / "adapter" / "adapter_model.safetensors"))
  assert a0.keys() == a1.keys() and any(not np.array_equal(a0[k], a1[k]) for k in a0)
  md = (workdir / "kappa_sweep.md").read_text()
  assert [r["kappa"] for r in kappa_sweep_table(stored)] == [0.0, 0.25, 0.5, 0.75, 1.0]
  assert all(f"| {k} |" in md for k in stored)
  assert (workdir / "kappa_sweep.png").read_bytes()[:8] == PNG
  # every kappa's evaluation saw the same contexts (paired)
  ids = [[e["episode_id"] for e in episodes_in(workdir / f"kappa_{k}" / "evaluate", by_name(["IQL+SFT+JPO"])[0])]
         for k in stored]
  assert all(i == ids[0] for i in ids) and len(ids[0]) == 3

  # a re-run trains nothing and negotiates nothing, and writes the same results
  monkeypatch.setattr("emodistill_jax.distill.stage.run_distill", no_negotiation)
  monkeypatch.setattr(runner, "method_negotiation", no_negotiation)
  c = study_config.get_config("kappa_smoke")
  c.pipeline_workdir = pipeline_dir
  run_study(c, str(workdir), echo=lambda *_: None)
  assert json.loads((workdir / "kappa_sweep.json").read_text()) == stored


@pytest.mark.slow
def test_tournament_and_transfer_studies_after_a_pipeline(pipeline_dir, tmp_path):
  c = study_config.get_config("tournament_smoke")
  c.pipeline_workdir = pipeline_dir
  paths = run_study(c, str(tmp_path / "tournament"), echo=lambda *_: None)
  stored = json.loads(open(paths["json"]).read())["crad"]
  assert {f: list(row) for f, row in stored.items()} == {f: ["sandbox", "student"] for f in ("Random", "IQL")}
  assert all(m["episodes"] == 3 for row in stored.values() for m in row.values())
  student = episodes_in(tmp_path / "tournament" / "tournament" / "iql_vs_student", IQL)
  assert {e["models"]["counterparty"] for e in student} == {"student"}  # the pipeline's student answered
  assert "## crad: utility" in open(paths["markdown"]).read()
  assert open(paths["plot:crad"], "rb").read()[:8] == PNG

  # transfer needs one pipeline per domain: a second one whose selector is the first's, enough for IQL
  pattern = str(tmp_path / "pipeline_{domain}")
  shutil.copytree(pipeline_dir, pattern.format(domain="crad"))
  shutil.copytree(os.path.join(pipeline_dir, "iql"), os.path.join(pattern.format(domain="disaster"), "iql"))
  c = study_config.get_config("transfer_smoke")
  c.pipeline_workdir = pattern
  paths = run_study(c, str(tmp_path / "transfer"), echo=lambda *_: None)
  matrix = json.loads(open(paths["json"]).read())["IQL"]
  assert {s: list(row) for s, row in matrix.items()} == {"crad": ["crad", "disaster"], "disaster": ["crad", "disaster"]}
  assert same(matrix["crad"], matrix["disaster"])  # the same selector in both rows: the same paired episodes
  cell = episodes_in(tmp_path / "transfer" / "transfer" / "crad_to_disaster", IQL)
  assert [e["scenario_id"] for e in cell] == [s.id for s in held_out("disaster", 3)]
  assert open(paths["plot:IQL"], "rb").read()[:8] == PNG
