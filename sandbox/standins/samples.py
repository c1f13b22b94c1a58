"""Realistic Moneypenny chat items and call messages, deterministic per seed, in the exact API
shape: the chats and calls of one business (BUSINESS), each chat opening with its own question.

`chatTime` is written the way a .NET API serialises a zone-less DateTime: fractional seconds
without trailing zeros ("…:09.87", and no fraction at all on a whole second).
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

_FIRST = ["Olivia", "Amelia", "Isla", "Ava", "Mia", "Grace", "Noah", "Oliver", "George", "Arthur",
          "Harry", "Leo", "Priya", "Aisha", "Tomasz", "Siobhan", "Rhys", "Callum", "Fatima", "Chen"]
_LAST = ["Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Evans", "Davies", "Patel", "Khan",
         "O'Brien", "Hughes", "Roberts", "MacLeod", "Nowak", "Thompson", "Wright", "Ahmed", "Walker", "Green"]
# One business, as a Moneypenny customer sees its own chats and calls: a plumbing and heating
# firm in Harrogate. Its visitors and callers ask what such a firm is asked, in their own words.
BUSINESS = "Harrogate Plumbing & Heating"
_SITE = "harrogate-plumbing.co.uk"
_PAGES = ["", "contact", "boilers/replacement", "services/emergency-plumber", "services/boiler-servicing",
          "landlords", "pricing?ref=nav"]
# What the visitors want: (the pre-chat form's subject, ways a visitor opens the chat, what follows).
_ENQUIRIES = [
    ("Quote for a new boiler", [
        "Hi, can I get a quote for a combi boiler replacement?",
        "How much would a new boiler cost, roughly? Ours is about 15 years old.",
        "Our boiler keeps losing pressure. Is it worth repairing or time for a new one?",
    ], [
        "It's a 3 bed semi in Harrogate, gas, the boiler is in the kitchen.",
        "Mornings are best for me, thanks!",
    ]),
    ("Emergency", [
        "We've got water coming through the kitchen ceiling!!",
        "A pipe has burst under the sink, can someone come out today?",
        "No heating or hot water since last night and we have a newborn, do you do emergency call-outs?",
    ], [
        "Postcode is HG1 2AB",
        "Please hurry",
    ]),
    ("Book a service", [
        "Hello, I'd like to book an annual boiler service please.",
        "When is your next free slot for a boiler service? It's a Worcester Bosch.",
        "I need a gas safety certificate for a rented flat before the 20th.",
    ], [
        "Any weekday works, I work from home.",
        "Great, my number's on the form.",
    ]),
    ("N/A", [
        "Are you open on bank holidays?",
        "Do you cover Knaresborough and Ripon?",
        "Do you fit underfloor heating in an extension?",
    ], []),
    ("Callback request", [
        "Can someone call me back about the invoice I received?",
        "Your engineer came on Tuesday but the radiator in the hall is leaking again.",
        "I missed a call from this number this morning, what was it about?",
    ], [
        "Ref INV-20931 – the amount looks wrong (we agreed £450 + VAT).",
        "Thanks :)",
    ]),
    ("Landlord enquiry", [
        "We let 40 flats around Harrogate, do you offer a maintenance contract?",
        "I'm a landlord with 3 properties, can you do the gas safety checks for all of them?",
    ], [
        "Mostly combi boilers, a couple of older system boilers.",
    ]),
]
# Who the visitors and callers are, when they give a company: the firm's own customers.
_CUSTOMERS = ["Self-employed", "Dales Lettings", "Nidd Valley Property Management", "{last} Holiday Cottages",
              "St Aidan's Primary School", "Harrogate Homes Ltd"]
_AGENTS = ["Sarah Jones", "Mark Ellis", "Hannah Price", "Dev Mistry", "Lucy Carter"]
_AGENT_LINES = [
    "Hi {first}, thanks for getting in touch with {company}. How can I help today?",
    "Thanks {first}, I'll pass that straight to the team.",
    "Could I take the best number to reach you on?",
    "Someone will call you back within the hour.",
    "Is there anything else I can help with?",
]
_SOURCES = [("google", "cpc", "boiler replacement harrogate"), ("facebook", "social", ""), ("newsletter", "email", ""),
            ("bing", "cpc", "emergency plumber near me"), ("", "", "")]


def chat_time_text(moment: datetime) -> str:
    """A naive datetime as Moneypenny writes it: no zone, milliseconds without trailing zeros."""
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{moment.microsecond // 1000:03d}".rstrip("0")
    return f"{text}.{fraction}" if fraction else text


def _phone(rng: random.Random) -> str | None:
    roll = rng.random()
    if roll < 0.15:
        return None
    if roll < 0.25:
        return ""
    if roll < 0.55:
        return f"07{rng.randint(100, 999)} {rng.randint(100000, 999999)}"
    if roll < 0.75:
        return f"+44 20 {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}"
    return f"01{rng.randint(100, 999)}{rng.randint(100000, 999999)}"


def sample_chats(
    n: int,
    start: datetime,
    seed: int = 0,
    spacing: timedelta = timedelta(minutes=7),
) -> list[dict[str, Any]]:
    """`n` chats from `start` (naive, UK local time) roughly `spacing` apart, each with a
    unique chatTime; the same arguments always give the same chats."""
    rng = random.Random(seed)
    chats: list[dict[str, Any]] = []
    used: set[str] = set()
    # Every way a chat opens, shuffled: the first messages differ until each has been used once.
    openings = [(form, first, rest) for form, firsts, rest in _ENQUIRIES for first in firsts]
    rng.shuffle(openings)
    for i in range(n):
        jitter_ms = rng.randint(0, max(0, int(spacing.total_seconds() * 1000 * 0.8)))
        moment = start + spacing * i + timedelta(milliseconds=jitter_ms)
        while chat_time_text(moment) in used:
            moment += timedelta(milliseconds=1)
        used.add(chat_time_text(moment))
        chats.append(_chat(rng, moment, openings[i % len(openings)]))
    return chats


def _chat(rng: random.Random, moment: datetime, opening: tuple[str, str, list[str]]) -> dict[str, Any]:
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    name = f"{first} {last}"
    company, site = BUSINESS, _SITE
    visitor_company = "" if rng.random() < 0.4 else rng.choice(_CUSTOMERS).format(last=last)
    email_user = f"{first}.{last}".lower().replace("'", "")
    email = f"{email_user}@{rng.choice(['gmail.com', 'outlook.com', 'btinternet.com', 'example.co.uk'])}"
    phone = _phone(rng)
    form, opener, more = opening
    visitor_lines = [opener, *more]
    agent = rng.choice(_AGENTS)
    transcript = [f"1: [Visitor] - [Visitor has started a chat. Pre-Chat Form Message: {form}]"]
    agent_lines = iter(_AGENT_LINES)
    transcript.append(f"2: [{agent}] - " + next(agent_lines).format(first=first, company=company))
    for line in visitor_lines:
        transcript.append(f"{len(transcript) + 1}: [Visitor] - {line}")
        if rng.random() < 0.7:
            reply = next(agent_lines, None)
            if reply:
                transcript.append(f"{len(transcript) + 1}: [{agent}] - " + reply.format(first=first, company=company))
    page = f"https://www.{site}/" + rng.choice(_PAGES)
    chat: dict[str, Any] = {
        "chatTime": chat_time_text(moment),
        "name": name,
        "companyName": visitor_company,
        "email": email if rng.random() > 0.05 else "",
        "phone": phone,
        "pageURL": page,
        "entryURL": rng.choice(
            [page, f"https://www.{site}/", f"https://www.{site}/?gclid=Cj0KCQiA{rng.randint(1000, 9999)}"]
        ),
        "transcript": transcript,
        "variables": [{"name": "name", "value": name}, {"name": "email", "value": email}],
        "tags": rng.choice([[], [], ["Sales"], ["Existing customer"], ["Sales", "Urgent"]]),
    }
    if phone:
        chat["variables"].append({"name": "phone", "value": phone})
    source, medium, term = rng.choice(_SOURCES)
    roll = rng.random()
    if roll < 0.15:
        pass  # some items carry no UTM keys at all
    elif roll < 0.25:
        chat.update(utM_Source=None, utM_Medium=None, utM_Term=None)
    else:
        chat.update(utM_Source=source, utM_Medium=medium, utM_Term=term)
    return chat


def tricky_chats(start: datetime) -> list[dict[str, Any]]:
    """Hostile and awkward chats, one per hazard, a minute apart from `start`: formula
    injection, Slack mentions and links, markup characters, a transcript over the 50,000
    character cell limit, nulls and missing fields, non-Latin text and emoji, a whole-second
    chatTime (no fraction) and an empty transcript."""
    t = lambda minutes, ms=123: chat_time_text(start + timedelta(minutes=minutes, milliseconds=ms))  # noqa: E731
    base = {
        "companyName": "", "email": "visitor@example.com", "phone": "0123456789",
        "pageURL": "https://example.co.uk/", "entryURL": "https://example.co.uk/",
        "variables": [], "tags": [], "utM_Source": "", "utM_Medium": "", "utM_Term": "",
    }
    return [
        {**base, "chatTime": t(0), "name": "=HYPERLINK(\"http://evil.example\",\"click\")",
         "companyName": "+SUM(1,2)", "phone": "+447700900123",
         "transcript": ["1: [Visitor] - [Visitor has started a chat. Pre-Chat Form Message: =1+1]",
                        "2: [Visitor] - -2+3", "3: [Visitor] - @SUM(A1)"]},
        {**base, "chatTime": t(1), "name": "<!channel> <@U12345> <#C999|general>",
         "companyName": "Evil <http://phish.example|Your bank>",
         "transcript": ["1: [Visitor] - [Visitor has started a chat. Pre-Chat Form Message: <!here>]",
                        "2: [Visitor] - ping <!everyone> & <mailto:x@example.com>"]},
        {**base, "chatTime": t(2), "name": "Tom & Jerry <Ltd>", "companyName": "A > B & C < D",
         "transcript": ["1: [Visitor] - [Visitor has started a chat. Pre-Chat Form Message: N/A]",
                        "2: [Visitor] - *bold* _italic_ ~strike~ `code` > quote"]},
        {**base, "chatTime": t(3), "name": "Long Talker",
         "transcript": ["1: [Visitor] - [Visitor has started a chat. Pre-Chat Form Message: N/A]"]
         + [f"{i}: [Visitor] - " + "blah " * 400 for i in range(2, 30)]},
        {"chatTime": t(4), "name": None, "companyName": None, "email": None, "phone": None,
         "pageURL": None, "entryURL": None, "transcript": None, "variables": None, "tags": None},
        {**base, "chatTime": t(5), "name": "Zoë Łukasiewicz 王芳", "companyName": "Café Crème 🍰",
         "transcript": ["1: [Visitor] - [Visitor has started a chat. Pre-Chat Form Message: Hola 👋]",
                        "2: [Visitor] - Ça va? 😀\nNew line\ttab"]},
        {**base, "chatTime": t(6, ms=0), "name": "Whole Second",
         "transcript": ["1: [Visitor] - [Visitor has started a chat. Pre-Chat Form Message: N/A]"]},
        {**base, "chatTime": t(7), "name": "No Transcript", "transcript": []},
    ]


# -- call messages (the call-answering service) --------------------------------------------------

_RECEPTIONISTS = ["Ann Employee", "Bethan Morgan", "Kerry Walsh", "Jas Sandhu", "Rob Fielding", "Ellie Shaw"]
_ACTIONS = ["Email", "SMS", "Email", "Transfer", "Email & SMS", "Callback requested", "Voicemail", "No action"]
# What callers to the same firm leave with the receptionist ({thing}: the job, {hour}, {ref}).
_CALL_MESSAGES = [
    "Would like a quote for {thing}. Best time to call back is after {hour}.",
    "Existing customer, says the engineer didn't turn up this morning. Not happy, please call back today.",
    "Calling about invoice INV-{ref}; thinks they were charged twice.",
    "Wants to book a boiler service for next week, any day but Wednesday.",
    "Returning your call from yesterday, didn't leave any other details.",
    "Urgent: {urgent} – please call as soon as possible.\nSecond number if no answer: 01423 {ref}",
    "Letting agent: the tenant at 14 Station Parade has no hot water. Can someone go today? Keys at the office.",
]
_THINGS = ["a new combi boiler", "moving a boiler into the loft", "a power flush", "two new radiators",
           "a bathroom refit"]
_URGENT = ["water leaking through the lounge ceiling", "no heating at a care home", "a burst pipe in the garage",
           "the boiler is leaking water onto the kitchen floor"]


def call_time_text(moment: datetime) -> str:
    """An aware datetime as the Messages endpoint writes it: milliseconds and a UTC offset."""
    return moment.isoformat(timespec="milliseconds")


def sample_calls(
    n: int,
    start: datetime,
    seed: int = 0,
    spacing: timedelta = timedelta(minutes=11),
    *,
    missing_ids: float = 0.0,
) -> list[dict[str, Any]]:
    """`n` call messages from `start` (aware, usually UTC) roughly `spacing` apart, each with a
    unique `callId` (a share `missing_ids` of them with none); the same arguments give the same
    messages."""
    rng = random.Random(seed)
    calls: list[dict[str, Any]] = []
    for i in range(n):
        moment = start + spacing * i + timedelta(milliseconds=rng.randint(0, int(spacing.total_seconds() * 800)))
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        message = rng.choice(_CALL_MESSAGES).format(thing=rng.choice(_THINGS), urgent=rng.choice(_URGENT),
                                                    hour=f"{rng.randint(1, 5)}pm", ref=rng.randint(10000, 99999))
        call: dict[str, Any] = {
            "date": call_time_text(moment),
            "caller": f"{first} {last}",
            "callerCompany": "" if rng.random() < 0.5 else rng.choice(_CUSTOMERS).format(last=last),
            "callerNumber": _phone(rng) or "Withheld",
            "actionTaken": rng.choice(_ACTIONS),
            "employee": rng.choice(_RECEPTIONISTS),
            "message": message,
            "callId": f"{seed:x}{i:05d}{rng.randrange(16**6):06X}",
        }
        if rng.random() < missing_ids:
            if rng.random() < 0.5:
                del call["callId"]
            else:
                call["callId"] = None
        calls.append(call)
    return calls


def tricky_calls(start: datetime) -> list[dict[str, Any]]:
    """Hostile and awkward call messages a minute apart from `start`: formula injection, Slack
    mentions and links, markup, a message over the cell limit, nulls, non-Latin text, no callId."""
    t = lambda minutes: call_time_text(start + timedelta(minutes=minutes, milliseconds=321))  # noqa: E731
    base = {"callerCompany": "", "callerNumber": "0123456789", "actionTaken": "Email", "employee": "Ann Employee"}
    return [
        {**base, "date": t(0), "caller": "=HYPERLINK(\"http://evil.example\",\"click\")", "callerCompany": "+SUM(1,2)",
         "message": "=1+1", "callId": "T-FORMULA"},
        {**base, "date": t(1), "caller": "<!channel> <@U12345>", "message": "ring <http://phish.example|your bank>",
         "callId": "T-MENTION"},
        {**base, "date": t(2), "caller": "*bold* _it_ ~s~", "message": "A > B & C < D", "callId": "T-MARKUP"},
        {**base, "date": t(3), "caller": "Long Talker", "message": "blah " * 12_000, "callId": "T-LONG"},
        {"date": t(4), "caller": None, "callerCompany": None, "callerNumber": None, "actionTaken": None,
         "employee": None, "message": None, "callId": "T-NULLS"},
        {**base, "date": t(5), "caller": "Zoë 王芳", "message": "Ça va? 😀\nline two", "callId": None},
    ]
