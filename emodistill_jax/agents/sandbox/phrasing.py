"""Sentence templates of the sandbox agents, per domain, in the project's own words.

Every template that carries a number is written so that the project's deterministic parser
(`negotiation.extract_offer`) reads back exactly the value put in, over the domain's whole range (a test
checks every template against every value on the rounding grid). Acceptances are read by
`is_acceptance`, walk-aways by `is_walkaway`, and no other template trips either detector. `{v}` is
filled with `domains.format_value` ("30 days", "95 minutes", "11:30 PM").
"""

from __future__ import annotations

# Focal offer sentences (the teacher proposes its value).
FOCAL_OFFERS: dict[str, tuple[str, ...]] = {
    "crad": (
        "I propose that you repay the balance within {v}.", "Our offer is full repayment in {v}.",
        "We can allow {v} to settle the account.", "Let's settle on {v} for the full balance."),
    "disaster": (
        "I need you to hold on for {v}.", "Can you hold out for {v}?",
        "Please stay put and hold on {v} more.", "Let's aim for you to hold on for {v}."),
    "hospital": (
        "The earliest slot we can offer is in {v}.", "I propose scheduling your surgery in {v}.",
        "We can book the operation for {v} from today.", "Let's plan your operation in {v}."),
    "student": (
        "I'd like you in bed by {v}.", "Lights out at {v}, please.", "Let's agree on a bedtime of {v}.",
        "How about you go to sleep at {v}?"),
}
# An ultimatum form of the offer, used now and then late in a negotiation.
FOCAL_ULTIMATUM = "This is my final offer: {v}."

# A focal sentence that pushes without naming a number (the "no number" flaw).
FOCAL_VAGUE: dict[str, tuple[str, ...]] = {
    "crad": ("You will have to pay sooner than that.", "We need a much shorter repayment period."),
    "disaster": ("You have to hold on longer than that.", "I need you to stay strong a while longer."),
    "hospital": ("The surgery will have to wait longer than that.", "We cannot schedule it that soon."),
    "student": ("You need to be in bed much earlier than that.", "That bedtime is far too late."),
}

# Counterparty counter-offers (it states its current threshold).
COUNTER_OFFERS: dict[str, tuple[str, ...]] = {
    "crad": ("I can pay within {v}.", "The best I can manage is {v}.", "I need {v} to pay this off.",
             "Could we make it {v}?"),
    "disaster": ("I can only hold on for {v}.", "I think I can last {v}.", "Please get here within {v}.",
                 "I can wait {v}, no longer."),
    "hospital": ("I need the surgery within {v}.", "Could you fit me in within {v}?", "I can wait {v} at most.",
                 "Please schedule it within {v}."),
    "student": ("I'll go to bed at {v}.", "How about I sleep at {v}?", "I can be in bed by {v}.",
                "Let's say lights out at {v}."),
}

# What the counterparty says before its counter-offer, by what it just read.
REACTIONS: dict[str, tuple[str, ...]] = {
    "moving": ("I can move a little.", "All right, I will give some ground.",
               "I see your point, so here is a step."),
    "firm": ("I hear you, but I need more room.", "That is still too much for me.", "I am not there yet."),
    "unrealistic": ("That figure is not realistic.", "That demand is out of touch with my situation."),
    "repetition": ("You keep repeating the same thing.", "You said that already."),
    "ultimatum": ("Pressure like that does not help.", "Ultimatums do not move me."),
}

ACCEPTANCES = ("I accept your offer.", "All right, you have a deal.", "Agreed.", "I can live with that.")
WALKAWAYS = ("I'm walking away. This negotiation is over.", "That's it, I'm done here.",
             "I'm ending this conversation.")
