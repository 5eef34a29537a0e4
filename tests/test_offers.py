"""Golden cases for the deterministic offer parser (DESIGN.md section 5).

Every expected value is what a human reader would call the speaker's proposal, in the domain's unit
(crad / hospital: days; disaster: minutes; student: minutes past 9 PM). None means the utterance makes
no offer: a refusal, history, a distractor, or no number at all.
"""

import pytest

from emodistill_jax.negotiation.offers import extract_offer, is_acceptance, is_walkaway

CRAD = [
    # distractors next to the proposal: money, dates, percentages, counts, phone and account numbers
    ("Your balance of $15,700 is overdue; I need full payment within 30 days.", 30),
    ("The outstanding 15,700 USD must be cleared within 30 days.", 30),
    ("You owe a balance of 15700 dollars, and I expect it paid in 45 days.", 45),
    ("Please pay by 2025-03-29.", None),
    ("Payment is due on March 3rd.", None),
    ("Give me until the 30th.", None),
    ("We can waive 20% of the late fees if you pay within 21 days.", 21),
    ("The interest rate is 5 percent and the balance is $3,200.", None),
    ("I have 3 children to feed and can only pay within 90 days.", 90),
    ("I'm 42 years old and have 2 kids; 60 days is what I need.", 60),
    ("Please call me at 555-123-4567 to confirm the 30-day plan.", 30),
    ("Your account number 4471-2290 shows a balance of 15700 dollars; we expect payment within 30 days.", 30),
    ("Given your 8 years of good history with us, I can extend the deadline to 45 days.", 45),
    ("We're talking about 15,700 dollars here, not pocket change.", None),
    ("Our records show 3 missed payments since 2023.", None),
    ("I'm offering 25 days with a 10% discount for early payment.", 25),
    ("On the 1st of April you'll owe another 500 euros, so pay within 2 weeks.", 14),
    ("I got paid on 03/15 and can pay within 25 days.", 25),
    ("The settlement amount is $12,000, payable in one lump sum within 30 days.", 30),
    ("You have until 5 PM today to respond, and then 30 days to pay.", 30),
    ("Our policy allows up to 30 days for settlements over $10,000.", 30),
    ("Please transfer 1,200 USD today and the remaining balance in 20 days.", 20),
    ("I can settle the full $8,450 within 6 weeks.", 42),
    ("I can pay $500 a month over 6 months.", 180),
    ("I can pay the $15,700 but I need 4 months.", 120),
    # units and number words
    ("I can offer you two weeks to settle the account.", 14),
    ("One month is the most I can give you.", 30),
    ("How about 1.5 months?", 45),
    ("I need at least 3 wks to gather the money.", 21),
    ("A fortnight is all I can offer.", 14),
    ("I'm offering a 10-day extension, nothing more.", 10),
    ("Pay within a week and we'll drop the late fee.", 7),
    ("Two months would give me enough time to sell my car.", 60),
    ("I'll need about ten weeks.", 70),
    ("I promise to pay in 8 weeks.", 56),
    ("Honestly I need two and a half months.", 75),
    ("How about we settle on a month and a half?", 45),
    ("I'd like a 90-day payment plan.", 90),
    ("We can give you 7 business days.", 7),
    ("I need a couple of months.", 60),
    ("Fine, let's say forty-five days.", 45),
    ("We need this resolved in thirty days or we'll take legal action.", 30),
    ("I can pay within 3 months, i.e., 90 days.", 90),
    ("Maybe 50 days?", 50),
    # bare numbers in a proposal frame
    ("I can do 30.", 30),
    ("Let's say 45.", 45),
    ("What about 55?", 55),
    ("I can stretch to 50, that's it.", 50),
    ("Ninety days is standard in my industry, but I can meet you at sixty.", 60),
    ("Sixty days. That's all I'm asking.", 60),
    # refusals, negation and counter-proposals
    ("I can't accept 60 days, but 45 days works.", 45),
    ("I can't accept 60.", None),
    ("Instead of 60, how about 50 days?", 50),
    ("Sixty days is too long; I can give you thirty-five.", 35),
    ("I'm not able to accept 30 days.", None),
    ("I refuse to agree to 25 days.", None),
    ("Honestly, 30 days just isn't realistic for me. I need 75 days.", 75),
    ("I need 10 weeks, not 4 weeks.", 70),
    ("Not 30 days, 45 days.", 45),
    ("I'll never manage 30 days.", None),
    ("That's too aggressive. I need more time.", None),
    ("I appreciate the offer, but 45 days is still too long for us. 35 days, final answer.", 35),
    ("No deal at 60 days. My best offer is 40 days.", 40),
    ("I was hoping for 3 months, but I could do 2 months.", 60),
    ("I'm willing to go up to 50 days, but not a day more.", 50),
    ("I can't go beyond 45 days.", 45),
    ("I'd rather not go past 35 days.", 35),
    ("Anything more than 60 days is unacceptable to us.", 60),
    ("If you don't pay within 30 days, we will refer the account to collections.", 30),
    # quoted counterparty numbers
    ("You said 90 days; I propose 40 days.", 40),
    ("The 90 days you asked for is out of the question; 45 days is my limit.", 45),
    ("Your proposal of 75 days doesn't work for us. We need payment within 40 days.", 40),
    ("I accept your offer of 45 days.", 45),
    # ranges and moves
    ("Could we agree on something between 40 and 45 days?", 42.5),
    ("I could manage 40-45 days.", 42.5),
    ("A repayment window of 40 to 45 days would be realistic for me.", 42.5),
    ("I'll pay within 45 to 50 days.", 47.5),
    ("I'm thinking somewhere in the range of 40-50 days.", 45),
    ("Let's extend from 30 to 45 days.", 45),
    ("Can we move the deadline from 30 days to 60 days?", 60),
    ("We could lower it from 60 to 50 days.", 50),
    # history that is not a proposal
    ("You are already 133 days overdue, so please settle within 30 days.", 30),
    ("We've been patient for 133 days. Thirty days is our final offer.", 30),
    ("I lost my job 2 months ago, so I'm asking for 90 days.", 90),
    ("I can offer one month, which is generous considering you're 4 months behind.", 30),
    ("Your account is 133 days past due.", None),
    ("Last month you promised to pay on the 15th; now I need the full amount in 10 days.", 10),
    ("We've already given you three extensions; this time the deadline is 20 days.", 20),
    # plain proposals from both sides
    ("Would you accept 50 days?", 50),
    ("We can settle at 35 days if you set up autopay today.", 35),
    ("Let's make it 50 days and call it fair.", 50),
    ("Between you and me, 50 days is the best I can do.", 50),
    ("Can you pay within 14 days? That's more than fair.", 14),
    ("I could pay half now and the rest in 60 days.", 60),
    ("Deal at 45 days.", 45),
    ("You have 30 days from today to pay in full.", 30),
    ("Can I have 60 days instead?", 60),
    ("I understand money is tight, but we need a resolution.", None),
    ("", None),
]

DISASTER = [
    # hold-on cues against arrival and context durations
    ("The drone arrives in 20 minutes, hold on for 90 minutes.", 90),
    ("The helicopter is grounded until the storm passes in 40 minutes; hold on for 80 minutes total.", 80),
    ("The rescue crew is 25 minutes away, but to be safe plan to hold out for 60 minutes.", 60),
    ("Our drone can drop supplies in 15 minutes, but the rescue team needs 2 hours.", 120),
    ("We lost contact 20 minutes ago; the team arrives in 40 minutes.", 40),
    ("You've been incredibly brave for 2 hours; just hold on for 30 more minutes.", 30),
    ("Every 10 minutes, flash your light; help arrives in 50 minutes.", 50),
    ("The satellite phone has 45 minutes of battery, but I can only last 20 minutes in this cold.", 20),
    ("I've been trapped for 3 hours already.", None),
    ("The flood started at 3 PM and it's been rising for 2 hours.", None),
    ("Hold on until we arrive in about 75 minutes.", 75),
    ("Hold on, rescue will be there in 50 minutes.", 50),
    # hours and minutes
    ("Can you hold on for an hour and a half?", 90),
    ("Help is 2 hours away.", 120),
    ("I need you to hold out for 1.5 hrs.", 90),
    ("The team will reach you in 90 min.", 90),
    ("Stay put for half an hour and keep your phone on.", 30),
    ("Hold on for two more hours; the boat is on its way.", 120),
    ("An hour. That's all I can manage.", 60),
    ("Please hang in there for 1 hour and 15 minutes.", 75),
    ("Hang on for 1 hr 20 min.", 80),
    ("Stay on the roof for 2.5 hours if you can.", 150),
    ("Please hold on for 1 more hour.", 60),
    ("Keep breathing slowly; help will arrive in roughly one hour.", 60),
    ("I can stay in the attic for a couple of hours.", 120),
    ("Can you manage a quarter of an hour?", 15),
    ("Please stay strong for one hundred and twenty minutes.", 120),
    ("Ninety-five minutes is the earliest we can get there.", 95),
    ("Stay where you are for forty-five minutes.", 45),
    ("Forty-five minutes is my limit.", 45),
    ("ETA 55 mins.", 55),
    ("I can give you 2 hours, not a minute more.", 120),
    ("Wind is gusting at 60 mph, so the chopper needs 2 hours to get to you.", 120),
    # distractors: distances, counts, percentages, clock times, places
    ("The water is 10 meters from my position and rising.", None),
    ("We're 40 nautical miles out; the helicopter ETA is 45 minutes.", 45),
    ("There are 5 people here with me and one is injured.", None),
    ("My battery is at 15%.", None),
    ("It's 11:45 PM and the temperature is 5 degrees.", None),
    ("I'm on the 3rd floor of the building and the water is at 2 meters.", None),
    ("I'm at mile marker 12 on Highway 101.", None),
    ("Call 911 if you can't reach us.", None),
    ("The survivor count is 4 and we have 2 boats.", None),
    ("The boat holds 6 people and will arrive in 65 minutes.", 65),
    ("I'm 16 years old and I'm scared, I can maybe last 25 minutes.", 25),
    ("It's 10 degrees out and I have 3 kids; I can hold out 40 minutes.", 40),
    ("My daughter is 8 and she can't wait more than 30 minutes.", 30),
    # refusals and counter-proposals
    ("I can't hold on for 2 hours!", None),
    ("I can't last 90 minutes, maybe 40 at most.", 40),
    ("Two hours is too long, I'm freezing.", None),
    ("Three hours? No way, I won't make it that long.", None),
    ("Instead of 30 minutes, can you give us 45?", 45),
    ("I can't wait 90 minutes. 50 minutes, tops.", 50),
    ("You said 120 minutes, but I can only manage 45.", 45),
    ("Rather than 2 hours, I could hold on for 1 hour.", 60),
    ("I refuse to wait 2 hours.", None),
    ("I'm asking you to hold on for 2 hours, not 30 minutes.", 120),
    ("I can do 35, no more.", 35),
    ("How about 70?", 70),
    ("Let's aim for 80 minutes.", 80),
    ("I can hold on for maybe 30 minutes, no longer.", 30),
    ("Please, I can only hang on for another 20 minutes.", 20),
    ("Just 30 minutes, please, I'm bleeding.", 30),
    ("I'll try to hold on for 50 minutes, but please hurry.", 50),
    # ranges
    ("Our ETA is between 60 and 70 minutes.", 65),
    ("Expect rescue in 45-60 minutes.", 52.5),
    ("We estimate 1 to 2 hours before the team reaches you.", 90),
    # plain proposals and arrival times
    ("Could you last 60 minutes while the crew clears the debris?", 60),
    ("Rescue is roughly 50 minutes out.", 50),
    ("We need you to stay calm and wait 75 minutes.", 75),
    ("Can you endure 100 minutes?", 100),
    ("I have maybe 10 minutes of air left.", 10),
    ("We're sending a boat; it should take about 35 minutes to reach you.", 35),
    ("You need to keep warm for another 70 minutes.", 70),
    ("I need you to survive for at least 100 minutes.", 100),
    ("Within the next 40 minutes a team will be there.", 40),
    ("We need 95 minutes to get the boat to you.", 95),
    ("Is 60 minutes okay with you?", 60),
    ("We're 90 minutes out, can you hold on that long?", 90),
    ("Give me a realistic number: 60 minutes?", 60),
    # no number at all
    ("I understand you're scared, but you need to stay strong until we get there.", None),
    ("Hold on!", None),
    ("", None),
]

HOSPITAL = [
    # context durations against the proposal
    ("You've already waited 45 days; we can schedule you in 60 days.", 60),
    ("I've been on the waitlist for 120 days.", None),
    ("The procedure takes 3 hours and recovery takes 6 weeks.", None),
    ("My doctor said within 2 weeks, and it's already been 5 weeks.", 14),
    ("It has been 2 months since your referral; now we can book you in 30 days.", 30),
    ("The patient in bed 4 has waited 200 days.", None),
    ("My pain level is 9 and I've waited 4 months.", None),
    ("The waitlist is currently 90 days, but I can move you up to 60 days.", 60),
    ("Our backlog is 150 days, so 90 days is already a favor.", 90),
    ("If we don't operate within 30 days, the risk increases; so I'm offering 28 days.", 28),
    ("Two surgeries are planned; the first can happen in 30 days.", 30),
    # distractors
    ("I'm 67 years old and need a hip replacement within 30 days.", 30),
    ("We have 2 surgeons and 14 patients ahead of you, so it'll be about 75 days.", 75),
    ("Your appointment is on April 12th at 9:30 AM.", None),
    ("The surgery costs $25,000 and insurance covers 80%.", None),
    ("I have 3 kids and a job; please schedule within 14 days.", 14),
    ("Your file number is 88213 and your wait is 50 days.", 50),
    ("Call us at (555) 201-3344 if you want a slot in 3 weeks.", 21),
    ("We've scheduled 12 surgeries this week.", None),
    ("Our unit does 3 knee replacements a day.", None),
    ("Please understand we have 300 patients on the list.", None),
    ("Considering your 2 prior surgeries, we recommend waiting 12 weeks.", 84),
    ("Could you do it in 3 weeks? My pain is 8 out of 10.", 21),
    ("Let's schedule you for the 15th of next month.", None),
    ("Your MRI is in 5 days and the surgery in 30 days.", 30),
    # units and number words
    ("We can get you in within two weeks.", 14),
    ("The earliest slot is in 6 weeks.", 42),
    ("How about a month?", 30),
    ("I propose one month and a half.", 45),
    ("We can offer a date in 8 weeks.", 56),
    ("Is three weeks possible?", 21),
    ("Our first available date is in eleven weeks.", 77),
    ("Let's go with 8 weeks.", 56),
    ("We're looking at a 10-week wait.", 70),
    ("I'll wait 3 weeks at most.", 21),
    ("Can we agree on 4 weeks?", 28),
    ("What about forty days?", 40),
    ("I hear you. Fifty-five days then.", 55),
    ("Sixty days, final offer.", 60),
    ("Thirty days is the longest I can wait.", 30),
    ("We could do one month at the earliest.", 30),
    ("I can accept 4 weeks, not a day longer.", 28),
    # bare numbers
    ("Let's say 40.", 40),
    ("I can do 45 if you bring your test results.", 45),
    ("Sixty? I can't wait that long.", None),
    # refusals, negation, counter-proposals
    ("I can't accept 90 days for my surgery.", None),
    ("I can't wait 60 days, my condition is getting worse. Please make it 20 days.", 20),
    ("I'm sorry, 90 days is unacceptable for someone in my condition.", None),
    ("I understand, but I can't do sooner than 45 days.", 45),
    ("I won't wait more than 30 days.", 30),
    ("You said 60 days, but I need it within 25 days.", 25),
    ("Could we say 5 weeks instead of 8 weeks?", 35),
    ("Rather than 70 days, would 50 days work for you?", 50),
    ("There's no way I can wait 3 months.", None),
    ("You asked for 14 days; the best I can do is 35 days.", 35),
    ("We can't do it in 10 days, but 45 days is possible.", 45),
    ("Six weeks is not acceptable.", None),
    ("I'm asking for 10 days, not 60.", 10),
    ("Scheduling in 9 days is impossible.", None),
    ("I'm in a lot of pain; I can't wait months.", None),
    ("I offered 40 days yesterday and I can now do 50 days.", 50),
    ("We can do 50 days, which is 10 days sooner than the standard 60 days.", 50),
    # ranges
    ("Between 50 and 60 days is what we're looking at.", 55),
    ("The surgeon is available in 2-3 weeks.", 17.5),
    ("You will be operated on within 8 to 10 weeks.", 63),
    # plain proposals from both sides
    ("Your surgery is scheduled for 60 days from now.", 60),
    ("I need the surgery within 10 days.", 10),
    ("I'm asking for surgery in 21 days.", 21),
    ("Our earliest availability is 35 days out.", 35),
    ("We could meet halfway at 45 days.", 45),
    ("You'd be seen in approximately 70 days.", 70),
    ("Hold on, I'll check... yes, we have a slot in 4 weeks.", 28),
    ("Let's settle on 50 days.", 50),
    ("The 40-day wait I offered still stands.", 40),
    ("I'll accept 35 days if you can guarantee the date.", 35),
    ("We need at least 60 days to prepare the operating room.", 60),
    ("I'd be fine with 20 days.", 20),
    ("Could you get me in by 20 days from now?", 20),
    ("How about we split the difference: 45 days?", 45),
    ("Would you consider 21 days?", 21),
    ("We could schedule in 45 days, or 40 if a cancellation comes up.", 45),
    ("I understand your frustration and we will do our best.", None),
    ("", None),
]

STUDENT = [
    # clock forms
    ("Could you be in bed by 11:30 PM tonight?", 150),
    ("I'd like you to be asleep by 10:30 PM.", 90),
    ("How about 11pm?", 120),
    ("Lights out by 11 PM, please.", 120),
    ("Bedtime should be 10 p.m. on school nights.", 60),
    ("How about 11:00 P.M.?", 120),
    ("I'll be in bed by 23:30.", 150),
    ("Around 10:45 would be great.", 105),
    ("I'm asking for 12:30, that's it.", 210),
    ("Bed at 9:50 PM is my suggestion.", 50),
    ("Bedtime: 11:15 PM.", 135),
    ("Please be in bed by nine forty-five PM.", 45),
    ("Eleven thirty pm works for me.", 150),
    ("Let's do ten thirty.", 90),
    ("How about 10 o'clock?", 60),
    ("Sleep by half past ten, okay?", 90),
    ("How about a quarter past eleven?", 135),
    # after midnight
    ("I want to stay up until 1:30 AM.", 270),
    ("Midnight is the latest I'll go.", 180),
    ("Let's compromise at 12:00 AM.", 180),
    ("I can go to bed at 12:30 AM.", 210),
    ("I want 2 AM.", 300),
    ("I'll agree to 12:45 AM.", 225),
    ("I can do 12:15 AM at the latest.", 195),
    ("I have 3 assignments due tomorrow, so I need until 1 AM.", 240),
    ("I need 7 hours of sleep before class at 8 AM, so 1 AM.", 240),
    ("I'll sleep at 1 AM, not a minute earlier.", 240),
    ("I can't go to bed before 1 AM.", 240),
    # bare hours: a time only after by/at/before/until
    ("Lights out by 11.", 120),
    ("I'll go to sleep at 12.", 180),
    ("I'll go to bed at 1.", 240),
    ("I'll be asleep by 12.", 180),
    ("Let's say 11.", None),
    ("I'm 17, not a child! I'll sleep when I want.", None),
    # durations, wake-up and activity times are not bedtimes
    ("You need 8 hours of sleep, so bed by 11 PM.", 120),
    ("Going to sleep at 10 PM would give you 9 hours before your 7 AM alarm.", 60),
    ("School starts at 7:30 AM, so you should be asleep by 10 PM.", 60),
    ("I need to be up at 6:30 AM for the bus.", None),
    ("I'm 15 and my alarm goes off at 6:45 AM.", None),
    ("I get home from practice at 9 PM and need time to unwind, so 11:30 PM.", 150),
    ("Dinner is at 7 PM and homework until 9 PM; lights out at 10 PM.", 60),
    ("I'll stop gaming at 11:30 PM and be in bed by 11:45 PM.", 165),
    ("Lights off at 10:15 PM and no screens after 9:45 PM.", 75),
    ("By 10 PM your brain needs to start winding down, and sleep by 10:30 PM.", 90),
    ("I'll agree to 11:00 PM if I can use my phone until 10:30 PM.", 120),
    ("My phone says it's 9:15 PM right now.", None),
    ("It's 11 PM already and you're still on your phone.", None),
    ("I was up until 3 AM last night.", None),
    # distractors
    ("My exam is on 2025-05-12 and I need to study.", None),
    ("My grades dropped 15% this semester.", None),
    ("Bedtime at 8:45 PM is way too early for a 16-year-old.", None),
    ("What time do you want to go to bed?", None),
    # refusals and counter-proposals
    ("I can't sleep at 10 PM, how about 11:30 PM?", 150),
    ("I can't sleep at 10 PM.", None),
    ("I won't go to bed at 9:30 PM.", None),
    ("9:30 PM is too early, but I could do 11 PM.", 120),
    ("You said midnight; I think 11 PM is more reasonable.", 120),
    ("Instead of 1 AM, how about 12:15 AM?", 195),
    ("No way I'm sleeping at 9:30 PM.", None),
    ("10:30 PM is unrealistic, I'm a night owl.", None),
    ("1 AM is too late; let's make it 11:30 PM.", 150),
    ("Even 10 PM is pushing it for me; can we do 12:30 AM?", 210),
    ("Are you seriously suggesting 9 PM?", None),
    ("Twelve? That's way too late.", None),
    # ranges and moves
    ("Between 10:30 and 11 PM would be ideal.", 105),
    ("Let's aim for 10:30-11 PM.", 105),
    ("How about sometime between 11 and 11:30 PM?", 135),
    ("From 1 AM to 12:30 AM is a fair step down.", 210),
    ("Let's move your bedtime from 12:30 AM to midnight.", 180),
    # plain proposals from both sides
    ("Can we agree on 11:15 PM?", 135),
    ("Can you turn off your phone at 10:45 PM?", 105),
    ("Let's meet halfway at 11:45 PM.", 165),
    ("Going to bed at 10:00 PM, that's my recommendation.", 60),
    ("How about we say 10:30 tonight?", 90),
    ("Your body needs rest; 10:30 PM is healthy.", 90),
    ("How about 11:30? I'll put my phone away.", 150),
    ("A bedtime of 11 PM sounds fair.", 120),
    ("We should aim for 10:45 PM on school nights.", 105),
    ("I'd accept 11:45 PM.", 165),
    ("Deal, 11:30 PM it is.", 150),
    ("Sleep is important for your memory and mood.", None),
    ("", None),
]


def _check(text, domain, expected):
  got = extract_offer(text, domain)
  if expected is None:
    assert got is None, f"{text!r} -> {got}"
  else:
    assert got is not None and got == pytest.approx(expected, abs=1e-9), f"{text!r} -> {got}"


@pytest.mark.parametrize("text, expected", CRAD)
def test_crad(text, expected):
  _check(text, "crad", expected)


@pytest.mark.parametrize("text, expected", DISASTER)
def test_disaster(text, expected):
  _check(text, "disaster", expected)


@pytest.mark.parametrize("text, expected", HOSPITAL)
def test_hospital(text, expected):
  _check(text, "hospital", expected)


@pytest.mark.parametrize("text, expected", STUDENT)
def test_student(text, expected):
  _check(text, "student", expected)


def test_at_least_80_cases_per_domain():
  assert min(len(CRAD), len(DISASTER), len(HOSPITAL), len(STUDENT)) >= 80


def test_unknown_domain_names_it():
  with pytest.raises(ValueError, match="retail"):
    extract_offer("I can do 30 days.", "retail")


def test_same_sentence_reads_per_domain_unit():
  text = "How about two weeks?"
  assert extract_offer(text, "crad") == 14
  assert extract_offer(text, "hospital") == 14
  assert extract_offer(text, "disaster") is None  # weeks are not a hold-on time
  assert extract_offer(text, "student") is None  # not a clock time


ACCEPTANCES = [
    ("I accept.", True),
    ("Deal.", True),
    ("Deal!", True),
    ("Agreed.", True),
    ("That works for me.", True),
    ("You have a deal.", True),
    ("I can live with that.", True),
    ("Okay, 45 days it is.", True),
    ("Fine, I accept your offer of 45 days.", True),
    ("We accept your proposal.", True),
    ("It's a deal.", True),
    ("Alright, agreed.", True),
    ("Okay, deal.", True),
    ("You've got yourself a deal.", True),
    ("I agree to 45 days.", True),
    ("Works for me.", True),
    ("I'll take it.", True),
    ("Then we have a deal, thank you.", True),
    ("Midnight it is.", True),
    ("I have no choice but to accept.", True),
    ("It's not ideal, but I accept.", True),
    ("That's acceptable.", True),
    ("I can't accept that.", False),
    ("I don't agree.", False),
    ("No deal.", False),
    ("I won't accept that.", False),
    ("That's not a deal.", False),
    ("Deal?", False),
    ("Do we have a deal?", False),
    ("I cannot accept 60 days.", False),
    ("I accept that you're struggling, but I need 30 days.", False),
    ("Would you accept 40 days?", False),
    ("If you accept 40 days, we can close this today.", False),
    ("I agree that it's a hard situation.", False),
    ("I refuse to accept this.", False),
    ("That doesn't work for me.", False),
    ("I would accept 50 days.", False),
    ("I'll never agree to that.", False),
    ("This is not acceptable.", False),
    ("Let's make a deal.", False),
    ("That sounds good, but I need 50 days.", False),
    ("I might accept 45 days.", False),
    ("There is no deal unless you pay.", False),
    ("I accept only if you waive the fee.", False),
    ("", False),
]

WALKAWAYS = [
    ("I'm walking away.", True),
    ("We're done here.", True),
    ("This negotiation is over.", True),
    ("I refuse to continue.", True),
    ("I'm ending this conversation.", True),
    ("No deal, goodbye.", True),
    ("I am walking away from this deal.", True),
    ("I'm done.", True),
    ("We are done with this.", True),
    ("I'm leaving.", True),
    ("I'm hanging up now.", True),
    ("Negotiations are over.", True),
    ("I give up.", True),
    ("There's nothing more to discuss.", True),
    ("That's it, I'm out.", True),
    ("I have no choice but to walk away.", True),
    ("This conversation is over, goodbye.", True),
    ("I'm done negotiating.", True),
    ("We're walking away from the table.", True),
    ("I will end this negotiation now.", True),
    ("I won't walk away.", False),
    ("Let's not give up.", False),
    ("I'm not walking away yet.", False),
    ("If you don't move, I'll walk away.", False),
    ("I could walk away right now.", False),
    ("Don't walk away, please.", False),
    ("I'm ready to walk away if needed.", False),
    ("We're not done here.", False),
    ("This isn't over.", False),
    ("Accept 30 days or I walk away.", False),
    ("Are you walking away?", False),
    ("I don't want to end this conversation.", False),
    ("No deal.", False),
    ("Thank you, we have a deal.", False),
    ("Please don't hang up.", False),
    ("I'm not giving up on you.", False),
    ("I never give up.", False),
    ("Before you walk away, hear me out.", False),
    ("I'm done with the paperwork for your 30-day plan.", False),
    ("I'm leaving the offer on the table for you.", False),
    ("", False),
]


@pytest.mark.parametrize("text, expected", ACCEPTANCES)
def test_is_acceptance(text, expected):
  assert is_acceptance(text) is expected


@pytest.mark.parametrize("text, expected", WALKAWAYS)
def test_is_walkaway(text, expected):
  assert is_walkaway(text) is expected
