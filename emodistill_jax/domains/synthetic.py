"""Seeded synthetic scenario generators: 100 scenarios per domain, so everything runs with no external
file. They emit raw rows with the EmoMAS columns and go through the same adapters as the real CSVs,
with value ranges taken from the real sets (crad: creditor 5-20 days vs debtor 30-180; disaster:
endurance 10-300 min, rescue 30-480; hospital: waitlist 5-365 days; student: assistant 8:30-11:00 PM vs
student 10:00 PM-3:30 AM). The text banks are the project's own.
"""

from __future__ import annotations

import numpy as np

from emodistill_jax.domains.adapters import scenario_from_row
from emodistill_jax.domains.scenario import Scenario
from emodistill_jax.domains.spec import minutes_to_clock, spec

_SURNAMES = ("Avery", "Brennan", "Castillo", "Dalton", "Eriksen", "Farouk", "Greer", "Haddad", "Ibarra",
             "Jansen", "Kowalski", "Lindqvist", "Moreau", "Nakamura", "Okafor", "Petrov", "Quinlan",
             "Rossi", "Sandoval", "Tanaka", "Umarov", "Varga", "Whitfield", "Yilmaz", "Zhou")
_SUFFIXES = ("Ltd", "LLC", "Group", "Holdings", "and Partners", "Trading", "Supply Co")
_CRAD = {
    "Credit Type": ("Working Capital Loan", "Equipment Financing", "Business Line of Credit",
                    "Trade Credit", "Invoice Financing"),
    "Purchase Purpose": ("Inventory restock", "Manufacturing equipment", "Payroll bridge", "Tax payments",
                         "Fleet upgrade", "Store renovation"),
    "Reason for Overdue": ("Key customer paid late", "Seasonal sales slump", "Supplier price shock",
                           "Unexpected repair costs", "Lost a major contract"),
    "Business Sector": ("Retail", "Logistics", "Food service", "Construction", "Light manufacturing"),
    "Collateral": ("Inventory", "Equipment", "Accounts Receivable", "None", "Real estate"),
    "Recovery Stage": ("Early Collection", "Pre-Collection", "Pre-Legal", "Restructuring"),
    "Cash Flow Situation": ("Temporary Shortage", "Chronic Shortage", "Recovering", "Complete Breakdown"),
    "Business Impact Description": (
        "Orders are down and two staff were let go.", "Margins are thin while a large invoice is unpaid.",
        "Operations continue but the cash buffer is gone.", "A new client should stabilise revenue soon."),
    "Proposed Solution": ("Installment plan", "Debt restructuring with extended terms", "Partial settlement",
                          "Collateral liquidation", "Equity conversion"),
}
_DISASTER = {
    "types": ("Earthquake", "Urban_Fire", "Flash_Flood", "Landslide", "Blizzard", "Mine_Collapse",
              "Hurricane", "Avalanche", "Chemical_Spill", "Tornado"),
    "conditions": ("Trapped_leg_injury", "Smoke_inhalation", "Hypothermia_risk", "Dehydration",
                   "Crush_injury_arm", "Concussion_confusion", "Broken_ribs", "Panic_shallow_breathing"),
    "needs": ("Water, Painkillers", "Oxygen, Bandages", "Heat_Pack, Blanket", "Splint, Water",
              "Air_Supply, Light", "Glucose, Reassurance"),
    "arguments": (
        "“Your breathing is steady and the air pocket is holding. The team can hear your knocks.”",
        "“The water has stopped rising. A boat is on its way and knows exactly where you are.”",
        "“The fire is moving away from your side of the building. Stay low and keep the cloth on.”",
        "“You have been strong so far. A drone is bringing water and the diggers are close.”"),
}
_HOSPITAL = {
    "conditions": (("Severe Hip Osteoarthritis", "Total Hip Replacement"),
                   ("Symptomatic Gallstones", "Laparoscopic Cholecystectomy"),
                   ("Rotator Cuff Tear", "Rotator Cuff Repair"), ("Severe Cataracts", "Cataract Surgery"),
                   ("Inguinal Hernia", "Laparoscopic Hernia Repair"),
                   ("Herniated Lumbar Disc", "Microdiscectomy"), ("Early Breast Cancer", "Lumpectomy"),
                   ("Carotid Stenosis", "Carotid Endarterectomy")),
    "experience": ("Senior (15+ years)", "Senior (Fellowship-trained)", "Senior (Subspecialist)"),
    "availability": ("Fully booked for elective surgeries", "Teaching commitments", "On leave for a month",
                     "Limited operating room slots"),
    "risk": ("Worsening pain and mobility", "Small risk of progression", "Risk of acute attack",
             "Gradual loss of function"),
    "reason": ("Wants to return to work", "Caring for a family member", "Anxious about waiting",
               "Upcoming family event"),
    "suggestion": ("Consider an experienced mid-career surgeon", "Junior surgeon under senior supervision",
                   "Partner hospital with a shorter list", "Wait for the preferred surgeon"),
}
_STUDENT = {
    "backgrounds": ("High_Achiever", "Creative_Writer", "Gamer", "Athlete_in_Training", "Night_Owl",
                    "Part_Time_Worker", "Anxious_Perfectionist", "Social_Butterfly"),
    "situations": ("Chemistry exam tomorrow", "Essay due at 8 AM", "Tournament this weekend",
                   "Group project falling behind", "New series just released", "Late shift at work"),
    "feelings": ("Stressed: too much left to do.", "Restless: mind will not switch off.",
                 "Excited: cannot stop now.", "Behind: everyone else seems ahead."),
    "reasons": ("Fear of falling behind.", "Night is the only quiet time.", "Wants to finish what was started.",
                "Feels sleep is wasted time."),
}


def _pick(rng: np.random.Generator, options):
  return options[int(rng.integers(len(options)))]


def _crad_row(rng, i):
  balance = round(float(rng.uniform(2_000, 50_000)), 2)
  return {
      "Creditor Name": f"{_pick(rng, _SURNAMES)} {_pick(rng, _SUFFIXES)}",
      "Debtor Name": f"{_pick(rng, _SURNAMES)} {_pick(rng, _SUFFIXES)}",
      **{k: _pick(rng, v) for k, v in _CRAD.items()},
      "Original Amount (USD)": f"{balance * float(rng.uniform(1.2, 2.5)):.2f}",
      "Outstanding Balance (USD)": f"{balance:.2f}",
      "Creditor Target Days": str(int(rng.integers(5, 21))),
      "Debtor Target Days": str(int(rng.integers(30, 181))),
      "Days Overdue": str(int(rng.integers(30, 365))),
      "Last Payment Date": f"2025-{int(rng.integers(1, 13)):02d}-{int(rng.integers(1, 29)):02d}",
      "Recovery Probability (%)": f"{float(rng.uniform(5, 95)):.1f}",
      "Interest Accrued (USD)": f"{balance * float(rng.uniform(0.01, 0.08)):.2f}",
  }


def _disaster_row(rng, i):
  endurance = int(rng.integers(2, 61)) * 5
  eta = min(480, endurance + int(rng.integers(4, 41)) * 5)
  return {
      "Case_ID": str(i), "Disaster_Type": _pick(rng, _DISASTER["types"]),
      "Survivor_Condition": _pick(rng, _DISASTER["conditions"]),
      "Estimated_Survivor_Endurance(minutes)": str(endurance), "Rescue_Team_ETA(minutes)": str(eta),
      "Critical_Needs": _pick(rng, _DISASTER["needs"]),
      "Key_Negotiation_Argument_By_RoboDog": _pick(rng, _DISASTER["arguments"]),
  }


def _hospital_row(rng, i):
  condition, surgery = _pick(rng, _HOSPITAL["conditions"])
  waitlist = int(rng.integers(5, 366))
  reduction = int(rng.integers(0, max(1, int(0.8 * waitlist))))
  return {
      "Case_ID": str(i), "Patient_Age": str(int(rng.integers(18, 86))), "Patient_Condition": condition,
      "Required_Surgery": surgery, "Urgency_Level": _pick(rng, ("Low", "Medium", "High")),
      "Days_On_Waitlist": str(waitlist), "Preferred_Surgeon_Available": _pick(rng, ("Yes", "No")),
      "Recommended_Surgeon_Experience_Level": _pick(rng, _HOSPITAL["experience"]),
      "Surgeon_Availability_Reason": _pick(rng, _HOSPITAL["availability"]),
      "Risk_If_Delayed": _pick(rng, _HOSPITAL["risk"]),
      "Patient_Reason_For_Urgency": _pick(rng, _HOSPITAL["reason"]),
      "Hospital_Suggestion": _pick(rng, _HOSPITAL["suggestion"]),
      "Estimated_Time_Reduction_If_Accept_Junior_Surgeon(days)": str(reduction),
      "Decision_Point": "Under consideration",
  }


def _student_row(rng, i):
  assistant = int(rng.integers(-30, 121)) // 15 * 15  # 8:30 PM .. 11:00 PM
  student = max(assistant + 30, int(rng.integers(60, 391)) // 15 * 15)  # 10:00 PM .. 3:30 AM
  return {
      "Case_ID": str(i), "Student_Age": str(int(rng.integers(13, 19))),
      "Student_Background": _pick(rng, _STUDENT["backgrounds"]),
      "Situation_Faced": _pick(rng, _STUDENT["situations"]), "Student_Feeling_Thought": _pick(rng, _STUDENT["feelings"]),
      "Robots_Requested_Bedtime": minutes_to_clock(assistant), "Student_Wanted_Bedtime": minutes_to_clock(student),
      "Primary_Annoyance_Reason": _pick(rng, _STUDENT["reasons"]),
  }


_ROWS = {"crad": _crad_row, "disaster": _disaster_row, "hospital": _hospital_row, "student": _student_row}


def synthetic_scenarios(domain: str, n: int = 100, seed: int = 0, train_rows: int | None = None) -> list[Scenario]:
  """n scenarios, the first 80% train; identical for the same (domain, n, seed)."""
  spec(domain)
  rng = np.random.default_rng([seed, list(_ROWS).index(domain)])
  train_rows = int(round(0.8 * n)) if train_rows is None else train_rows
  return [scenario_from_row(domain, _ROWS[domain](rng, i), i, source=f"synthetic:seed={seed}",
                            train_rows=train_rows) for i in range(1, n + 1)]
