"""Fluent Speech Commands' 31 intents (action, object, location) and spoken phrasings of each.

The triples are FSC's real label set; the phrasings imitate its transcriptions, so a model
trained on the synthetic corpus faces the same task shape (several wordings per intent,
location sometimes said, sometimes not).
"""
from __future__ import annotations

Intent = tuple[str, str, str]

ROOMS = {"kitchen": ["kitchen"], "bedroom": ["bedroom"], "washroom": ["washroom", "bathroom"]}


def _lights(on: bool, room: str | None) -> list[str]:
    word = "on" if on else "off"
    if room is None:
        return [f"turn {word} the lights", f"switch {word} the lights", f"lights {word}",
                f"turn the lights {word}", f"switch the lights {word}"]
    out = []
    for name in ROOMS[room]:
        out += [f"turn {word} the {name} lights", f"{name} lights {word}",
                f"switch {word} the lights in the {name}", f"turn the lights {word} in the {name}"]
    return out


def _heat(up: bool, room: str | None) -> list[str]:
    way, more, feel = ("up", "increase", "warmer") if up else ("down", "decrease", "cooler")
    if room is None:
        return [f"turn the heat {way}", f"{more} the temperature", f"heat {way}",
                f"make it {feel}", "it's too cold" if up else "it's too hot", f"{more} the heating"]
    out = []
    for name in ROOMS[room]:
        out += [f"turn the heat {way} in the {name}", f"{name} heat {way}",
                f"make the {name} {feel}", f"{more} the temperature in the {name}"]
    return out


def _bring(thing: str) -> list[str]:
    article = {"shoes": "my", "socks": "my", "juice": "some", "newspaper": "the"}[thing]
    return [f"bring me {article} {thing}", f"get me {article} {thing}", f"fetch {article} {thing}",
            f"go get {article} {thing}", f"i need {article} {thing}"]


def _language(name: str) -> list[str]:
    if name == "none":
        return ["change language", "switch language", "change the language", "language settings",
                "open the language settings"]
    return [f"switch to {name}", f"change the language to {name}", f"set the language to {name}",
            f"use {name}", f"{name} please", f"i want to speak {name}"]


def _build() -> dict[Intent, list[str]]:
    table: dict[Intent, list[str]] = {}
    for room in (None, "kitchen", "bedroom", "washroom"):
        location = room or "none"
        table["activate", "lights", location] = _lights(True, room)
        table["deactivate", "lights", location] = _lights(False, room)
        table["increase", "heat", location] = _heat(True, room)
        table["decrease", "heat", location] = _heat(False, room)
    table["activate", "lamp", "none"] = ["turn on the lamp", "lamp on", "switch on the lamp", "turn the lamp on"]
    table["deactivate", "lamp", "none"] = ["turn off the lamp", "lamp off", "switch off the lamp",
                                           "turn the lamp off"]
    table["activate", "music", "none"] = ["play the music", "play music", "start the music",
                                          "put on some music", "resume the music", "music on"]
    table["deactivate", "music", "none"] = ["stop the music", "pause the music", "turn off the music",
                                            "music off", "stop playing music"]
    table["increase", "volume", "none"] = ["increase the volume", "turn up the volume", "volume up",
                                           "louder", "make it louder", "turn the sound up"]
    table["decrease", "volume", "none"] = ["decrease the volume", "turn down the volume", "volume down",
                                           "quieter please", "make it quieter", "it's too loud"]
    for thing in ("shoes", "socks", "juice", "newspaper"):
        table["bring", thing, "none"] = _bring(thing)
    for language in ("none", "Chinese", "English", "German", "Korean"):
        table["change language", language, "none"] = _language(language)
    return dict(sorted(table.items()))


PHRASES: dict[Intent, list[str]] = _build()
