"""An offline, deterministic pose describer that reads geometry from MPII keypoints.

It writes in the same template as the LLM prompt ("There are two people in image who are running. ..."
then "The person on the left is standing with their left leg ...") from what the joints show: posture
(standing, sitting, kneeling, lying, crouching, bending), the bend angle at each knee and elbow, raised
or extended arms, torso lean, head tilt, where each person is in the frame and how many people there
are. Invisible joints are skipped (the text says less). Phrasings vary between records, chosen by a
hash of ``(seed, record id)``, so the same record always gets the same text.

With ``attributes=True`` the record's ``labels`` (age group, facial expression or emotions) are woven
in. Unlike the LLM of the paper, which never saw the image, this uses ground-truth labels: text made
this way carries label information and must not be used to evaluate on those same labels.

Coordinates are image pixels (x to the right, y downwards); "left" and "right" of a limb are the
person's own sides (MPII convention); "left" and "right" of the frame are the image's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from focusclip.data.records import Record, record_id
from focusclip.describe.backend import Outcome
from focusclip.english import article, count_in_words, join_words, pick_variant
from focusclip.skeleton import (
    ARMS,
    HEAD_TOP,
    L_HIP,
    L_SHOULDER,
    LEGS,
    NUM_JOINTS,
    PELVIS,
    R_HIP,
    R_SHOULDER,
    THORAX,
    UPPER_NECK,
    visible_mask,
)

RULES_VERSION = "rules-v2"  # v2: joints just outside the frame count as visible (one visibility rule)


# ------------------------------------------------------------------------------------- geometry
def _angle_at(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float | None:
    """The angle ABC in degrees (180 = straight), ``None`` for a degenerate segment."""
    u, v = a - b, c - b
    nu, nv = np.linalg.norm(u), np.linalg.norm(v)
    if nu < 1e-6 or nv < 1e-6:
        return None
    return math.degrees(math.acos(float(np.clip(np.dot(u, v) / (nu * nv), -1.0, 1.0))))


def _from_down(v: np.ndarray) -> float:
    """Angle in degrees between ``v`` and the downward image direction (0 = pointing straight down)."""
    return math.degrees(math.atan2(abs(float(v[0])), float(v[1])))


def _round_to(x: float, step: int) -> int:
    return int(step * round(x / step))


@dataclass
class _Skeleton:
    joints: np.ndarray  # (16, 2)
    visible: np.ndarray  # (16,) bool

    @classmethod
    def from_person(cls, person: dict[str, Any]) -> _Skeleton:
        joints = np.asarray(person.get("joints") or [[-1, -1]] * NUM_JOINTS, dtype=float).reshape(NUM_JOINTS, 2)
        return cls(joints, visible_mask(joints, person.get("visible")))

    def pt(self, j: int) -> np.ndarray | None:
        return self.joints[j] if self.visible[j] else None

    def mid(self, *ids: int) -> np.ndarray | None:
        pts = [self.joints[j] for j in ids if self.visible[j]]
        return np.mean(pts, axis=0) if len(pts) == len(ids) else None

    @property
    def n_visible(self) -> int:
        return int(self.visible.sum())

    def hip_centre(self) -> np.ndarray | None:
        m = self.mid(L_HIP, R_HIP)
        return m if m is not None else self.pt(PELVIS)

    def shoulder_centre(self) -> np.ndarray | None:
        for p in (self.pt(THORAX), self.mid(L_SHOULDER, R_SHOULDER), self.pt(UPPER_NECK)):
            if p is not None:
                return p
        return None

    def torso(self) -> np.ndarray | None:
        """Vector from the hips up to the shoulders."""
        hip, top = self.hip_centre(), self.shoulder_centre()
        if hip is None or top is None or np.linalg.norm(top - hip) < 1e-6:
            return None
        return top - hip

    def torso_length(self) -> float | None:
        t = self.torso()
        return float(np.linalg.norm(t)) if t is not None else None

    def centre_x(self, person: dict[str, Any]) -> float | None:
        c = person.get("center")
        if c is not None and c[0] is not None and c[0] >= 0:
            return float(c[0])
        return float(self.joints[self.visible, 0].mean()) if self.n_visible else None

    def lean(self) -> float | None:
        """Signed torso angle from vertical in degrees: positive leans towards the image's right."""
        t = self.torso()
        return None if t is None else math.degrees(math.atan2(float(t[0]), -float(t[1])))

    def leg(self, side: str) -> dict[str, Any]:
        hip, knee, ankle = (self.pt(j) for j in LEGS[side])
        out: dict[str, Any] = {}
        if hip is not None and knee is not None:
            out["thigh_from_down"] = _from_down(knee - hip)
            out["thigh_len"] = float(np.linalg.norm(knee - hip))
            out["knee_above_hip"] = bool(knee[1] < hip[1])
        if knee is not None and ankle is not None:
            out["shin_from_down"] = _from_down(ankle - knee)
            out["shin_len"] = float(np.linalg.norm(ankle - knee))
        if hip is not None and knee is not None and ankle is not None:
            out["knee_angle"] = _angle_at(hip, knee, ankle)
            out["drop"] = float(ankle[1] - hip[1])
        return out

    def arm(self, side: str) -> dict[str, Any]:
        shoulder, elbow, wrist = (self.pt(j) for j in ARMS[side])
        out: dict[str, Any] = {"wrist": wrist, "elbow": elbow, "shoulder": shoulder}
        if shoulder is not None and elbow is not None and wrist is not None:
            out["elbow_angle"] = _angle_at(shoulder, elbow, wrist)
        return out


# ------------------------------------------------------------------------------------- phrasing


def activity_phrase(activity: dict[str, Any] | None) -> str | None:
    """``[verb + activity]`` from an MPII activity: "bicycling, mountain" -> "mountain bicycling"."""
    if not activity:
        return None
    name = activity.get("name") or activity.get("category")
    if not name or not str(name).strip():
        return None
    parts = [p.strip() for p in " ".join(str(name).lower().split()).split(",") if p.strip()]
    phrase = f"{parts[1]} {parts[0]}" if len(parts) == 2 and len(parts[1].split()) <= 3 else ", ".join(parts)
    if any(w.endswith("ing") for w in phrase.split()[:3]):
        return phrase
    return f"engaged in {phrase}"


_POSTURE_WORDS = {
    "standing": ("standing", "standing upright", "standing on their feet"),
    "sitting": ("sitting", "sitting down", "sitting upright"),
    "kneeling": ("kneeling", "kneeling down", "kneeling on the ground"),
    "lying": ("lying down", "lying on the ground", "lying flat"),
    "crouching": ("crouching", "crouching down", "crouching low"),
    "bending": ("bending over", "bending at the waist", "bending the upper body"),
    "upside down": ("upside down", "upside down, inverted", "turned upside down"),
    "upright": ("upright", "holding the upper body upright", "upright in the upper body"),
}


def posture(sk: _Skeleton) -> str | None:
    """One of standing, sitting, kneeling, lying, crouching, bending, upside down, upright (legs
    unseen) or ``None`` when too little is visible."""
    lean = sk.lean()
    legs = [sk.leg(s) for s in ("left", "right")]
    knees = [g["knee_angle"] for g in legs if g.get("knee_angle") is not None]
    thighs = [g["thigh_from_down"] for g in legs if "thigh_from_down" in g]
    shins = [g["shin_from_down"] for g in legs if "shin_from_down" in g]
    if lean is not None and abs(lean) >= 135:
        return "upside down"
    if lean is not None and abs(lean) >= 60:
        # A horizontal torso over legs that still point down is a bend at the waist, not lying.
        whole = [_from_down(a - h) for h, a in ((sk.pt(hj), sk.pt(aj)) for hj, _, aj in LEGS.values())
                 if h is not None and a is not None]
        segments = thighs + shins + whole
        legs_down = bool(segments) and max(segments) < 35
        return "bending" if legs_down and abs(lean) < 120 else "lying"
    drops = [g["drop"] / (g["thigh_len"] + g["shin_len"]) for g in legs
             if "drop" in g and g["thigh_len"] + g["shin_len"] > 0]
    if knees and min(knees) < 90 and drops and min(drops) < 0.35:
        return "crouching"
    if thighs and shins and max(thighs) < 35 and min(shins) >= 60:
        return "kneeling"
    if thighs and min(thighs) >= 50 and (lean is None or abs(lean) < 45):
        return "sitting"
    if lean is not None and abs(lean) >= 30:
        return "bending"
    if knees or thighs:
        return "standing"
    if lean is not None:
        return "upright"
    return None


class _Phraser:
    """Builds the sentences for one record; every variant choice is keyed by (seed, record id, slot)."""

    def __init__(self, seed: int, rid: str):
        self.prefix = f"{seed}|{rid}|"

    def pick(self, options: tuple[str, ...] | list[str], slot: str) -> str:
        return pick_variant(options, self.prefix + slot)

    # ---------------------------------------------------------------------------- limbs
    def leg(self, sk: _Skeleton, side: str, post: str | None, slot: str) -> str | None:
        g = sk.leg(side)
        angle = g.get("knee_angle")
        if angle is not None:
            a = _round_to(angle, 10)
            if angle >= 160:
                text = self.pick(("straight", "fully extended", "held straight"), slot)
            elif angle >= 135:
                text = self.pick((f"slightly bent at the knee (about {a} degrees)",
                                  f"a little bent, the knee at about {a} degrees"), slot)
            elif angle >= 75:
                text = self.pick((f"bent at the knee at about {a} degrees",
                                  f"bent to about {a} degrees at the knee",
                                  f"flexed at the knee to roughly {a} degrees"), slot)
            else:
                text = self.pick((f"sharply bent at the knee (about {a} degrees)",
                                  f"tightly folded at the knee, about {a} degrees"), slot)
            if g.get("knee_above_hip") and post in ("standing", "bending", None):
                text += ", the thigh lifted above hip level"
            elif (post in ("standing", "bending") and g.get("thigh_from_down", 0) >= 45):
                text += ", the thigh raised forward"
            return text
        if "thigh_from_down" in g:
            return f"only partly visible, the thigh pointing {_direction(g['thigh_from_down'])}"
        if "shin_from_down" in g:
            return f"only partly visible, the lower leg pointing {_direction(g['shin_from_down'])}"
        return None

    def arm(self, sk: _Skeleton, side: str, slot: str) -> str | None:
        g = sk.arm(side)
        wrist, elbow, shoulder = g["wrist"], g["elbow"], g["shoulder"]
        angle = g.get("elbow_angle")
        head_top = sk.pt(HEAD_TOP)
        neck = sk.pt(UPPER_NECK)
        torso = sk.torso_length() or 0.0
        raised_over_head = wrist is not None and (
            (head_top is not None and wrist[1] < head_top[1])
            or (head_top is None and neck is not None and torso and wrist[1] < neck[1] - 0.3 * torso)
        )
        bend = ""
        if angle is not None:
            a = _round_to(angle, 10)
            bend = ("held straight" if angle >= 160 else f"bent at the elbow at about {a} degrees")
        if raised_over_head:
            head = self.pick(("raised above the head", "lifted high above the head",
                              "raised up over the head"), slot)
            return f"{head}" + (f", {bend}" if bend else "")
        if angle is not None and shoulder is not None and wrist is not None:
            v = wrist - shoulder
            from_down = _from_down(v)
            centre_x = sk.shoulder_centre()[0] if sk.shoulder_centre() is not None else shoulder[0]
            outward = abs(wrist[0] - centre_x) > abs(shoulder[0] - centre_x)
            upper = float(np.linalg.norm(elbow - shoulder))
            if angle >= 150 and 60 <= from_down <= 120 and outward:
                return self.pick(("extended sideways at shoulder height",
                                  "stretched out to the side",
                                  "held straight out to the side"), slot)
            if (angle >= 140 and torso and upper < 0.35 * torso
                    and abs(float(v[1])) < 0.35 * torso):
                return self.pick(("extended forward towards the camera",
                                  "stretched out forward"), slot)
            if angle >= 150 and from_down <= 25:
                return self.pick(("hanging straight down by their side",
                                  "relaxed and straight along the body",
                                  "straight down at their side"), slot)
            if wrist[1] < shoulder[1] - 0.1 * max(torso, 1.0):
                return f"raised above the shoulder, {bend}"
            return f"{bend}, the hand {self._hand_level(sk, wrist)}"
        if shoulder is not None and elbow is not None:
            return f"only partly visible, the upper arm pointing {_direction(_from_down(elbow - shoulder))}"
        if wrist is not None and elbow is not None:
            return f"only partly visible, the forearm pointing {_direction(_from_down(wrist - elbow))}"
        return None

    @staticmethod
    def _hand_level(sk: _Skeleton, wrist: np.ndarray) -> str:
        neck, top, hip = sk.pt(UPPER_NECK), sk.shoulder_centre(), sk.hip_centre()
        if neck is not None and wrist[1] < neck[1]:
            return "near the head"
        if top is not None and hip is not None:
            if wrist[1] < (top[1] + hip[1]) / 2:
                return "at chest level"
            if wrist[1] < hip[1]:
                return "at waist level"
            return "below the hips"
        return "in front of the body"

    def torso(self, sk: _Skeleton, slot: str) -> str | None:
        lean = sk.lean()
        if lean is None:
            return None
        a = _round_to(abs(lean), 5)
        side = "right" if lean > 0 else "left"
        if abs(lean) < 10:
            return self.pick(("upright", "held vertical",
                              "straight and upright"), slot)
        if abs(lean) >= 135:
            return "inverted, the hips above the shoulders"
        if abs(lean) >= 60:
            return f"nearly horizontal, the shoulders towards the {side} of the image"
        return self.pick((f"leaning to the {side} of the image by about {a} degrees",
                          f"tilted about {a} degrees from vertical towards the image's {side}"),
                         slot)

    def head(self, sk: _Skeleton, slot: str) -> str | None:
        neck, top = sk.pt(UPPER_NECK), sk.pt(HEAD_TOP)
        if neck is None or top is None or np.linalg.norm(top - neck) < 1e-6:
            return None
        head = top - neck
        torso = sk.torso()
        ref = torso if torso is not None else np.array([0.0, -1.0])
        tilt = math.degrees(math.atan2(float(ref[0] * head[1] - ref[1] * head[0]), float(np.dot(ref, head))))
        a = _round_to(abs(tilt), 5)
        if abs(tilt) < 15:
            return self.pick(("upright, in line with the torso",
                              "straight above the shoulders",
                              "in line with the body"), slot)
        if abs(tilt) >= 100:
            return "bowed down towards the chest"
        side = "right" if tilt > 0 else "left"
        return self.pick((f"tilted to the {side} of the image by about {a} degrees",
                          f"leaning about {a} degrees towards the image's {side}"), slot)


def _direction(from_down: float) -> str:
    if from_down < 30:
        return "down"
    if from_down < 60:
        return "down and outwards"
    if from_down <= 120:
        return "sideways"
    return "upwards"


# ------------------------------------------------------------------------------------ locations
def _locations(record: Record, people: list[dict[str, Any]], skeletons: list[_Skeleton]) -> list[str]:
    """A location phrase per person: "on the left", "in the centre", "in the background on the right"."""
    width = record.get("width")
    height = record.get("height")
    xs = [sk.centre_x(p) for p, sk in zip(people, skeletons)]
    scales = [float(p["scale"]) if p.get("scale") else None for p in people]
    n = len(people)
    horiz: list[str] = []
    for x in xs:
        if x is None:
            horiz.append("")
        elif width:
            rel = x / float(width)
            horiz.append("on the left" if rel < 1 / 3 else "on the right" if rel > 2 / 3 else "in the centre")
        elif n > 1:
            known = sorted(v for v in xs if v is not None)
            rank = known.index(x) / max(len(known) - 1, 1)
            horiz.append("on the left" if rank < 1 / 3 else "on the right" if rank > 2 / 3 else "in the centre")
        else:
            horiz.append("")
    depth = [""] * n
    known_scales = [s for s in scales if s]
    if n > 1 and known_scales:
        biggest = max(known_scales)
        if min(known_scales) < 0.7 * biggest:
            depth = ["" if not s else "in the background" if s < 0.7 * biggest else "in the foreground"
                     for s in scales]
    elif n == 1 and scales[0] and height:
        size = scales[0] * 200.0 / float(height)
        depth = ["close to the camera" if size > 0.75 else "far from the camera" if size < 0.25 else ""]
    phrases = [" ".join(w for w in (d, h) if w) for d, h in zip(depth, horiz)]
    # People who share a phrase are told apart by their left-to-right order.
    out = []
    for i, phrase in enumerate(phrases):
        same = sorted((j for j in range(n) if phrases[j] == phrase),
                      key=lambda j: (xs[j] if xs[j] is not None else math.inf, j))
        if len(same) > 1:
            k = same.index(i)
            word = _ORDINALS[k] if k < len(_ORDINALS) else f"number {k + 1}"
            out.append(f"{word} person {phrase}".strip())
        else:
            out.append(f"person {phrase}".strip())
    return out


_ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth")


# ----------------------------------------------------------------------------------- attributes
_AGE_WORDS = {"kid": "a kid", "child": "a child", "baby": "a baby", "teenager": "a teenager",
              "teen": "a teenager", "adult": "an adult", "young adult": "a young adult",
              "elderly": "an older person", "senior": "an older person"}


def attribute_phrase(labels: dict[str, Any] | None) -> str | None:
    """"a kid with a happy expression" from ``{"age": "kid", "expression": "happy"}``. Only age and
    expression / emotions are used (gender and race are never mentioned)."""
    if not labels:
        return None
    age = labels.get("age", labels.get("age_group"))
    noun = None
    if isinstance(age, (int, float)) and not isinstance(age, bool) and age >= 0:
        noun = f"a {int(age)}-year-old"
    elif isinstance(age, str) and age.strip():
        a = age.strip().lower()
        noun = _AGE_WORDS.get(a) or (f"someone aged {a}" if any(c.isdigit() for c in a) else f"{article(a)} {a}")
    expr = labels.get("expression", labels.get("emotion", labels.get("emotions")))
    feel = None
    if isinstance(expr, str) and expr.strip():
        e = expr.strip().lower()
        feel = f"with {article(e)} {e} expression"
    elif isinstance(expr, (list, tuple)) and expr:
        feel = f"who appears to feel {join_words([str(x).strip().lower() for x in expr if str(x).strip()])}"
    if noun and feel:
        return f"{noun} {feel}"
    return noun or feel


# --------------------------------------------------------------------------------------- record
def _first_sentence(n: int, activity: str | None) -> str:
    if n == 0:
        return "There are no annotated people in image" + (f", where the activity is {activity}." if activity
                                                           else ".")
    count = count_in_words(n)
    if n == 1:
        return f"There is one person in image who is {activity}." if activity else "There is one person in image."
    return f"There are {count} people in image who are {activity}." if activity else f"There are {count} people in image."


def _general_sentence(ph: _Phraser, postures: list[str | None], skeletons: list[_Skeleton]) -> str | None:
    n = len(skeletons)
    if n == 0:
        return None
    if n == 1:
        v = skeletons[0].n_visible
        if v == NUM_JOINTS:
            return ph.pick(("All sixteen body joints are visible, so the whole pose can be read.",
                            "The whole body is visible, with all sixteen joints in view."), "general")
        if v == 0:
            return "None of the body joints are visible."
        return ph.pick((f"{count_in_words(v).capitalize()} of the sixteen body joints are visible; "
                        "the rest are hidden or out of the frame.",
                        f"Only {count_in_words(v)} of the sixteen body joints can be seen."), "general")
    known = [p for p in postures if p]
    if not known:
        return "Their poses are only partly visible."
    counts: dict[str, int] = {}
    for p in known:
        counts[p] = counts.get(p, 0) + 1
    if len(counts) == 1 and len(known) == n:
        word = _POSTURE_WORDS[known[0]][0]
        return ph.pick((f"All of them are {word}." if n > 2 else f"Both of them are {word}.",
                        f"Everyone in the image is {word}."), "general")
    parts = [f"{count_in_words(c)} {'is' if c == 1 else 'are'} {_POSTURE_WORDS[p][0]}"
             for p, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    return f"Of them, {join_words(parts)}."


def _person_sentences(ph: _Phraser, i: int, location: str, sk: _Skeleton, post: str | None,
                      attrs: str | None) -> str:
    """"The person on the left is standing with their left leg ... Their left arm is ... Their torso ..."."""
    slot = f"p{i}"
    legs = [(f"their {s} leg", ph.leg(sk, s, post, f"{slot}.leg.{s}")) for s in ("left", "right")]
    arms = [(f"their {s} arm", ph.arm(sk, s, f"{slot}.arm.{s}")) for s in ("left", "right")]
    rest = [("their torso", ph.torso(sk, f"{slot}.torso")), ("their head", ph.head(sk, f"{slot}.head"))]
    who = f"The {location}" + (f", {attrs}," if attrs else "")
    state = ph.pick(_POSTURE_WORDS[post], f"{slot}.posture") if post else "only partly visible"
    legs = [f"{limb} {text}" for limb, text in legs if text]
    sentences = [f"{who} is {state}" + (f" with {join_words(legs)}." if legs else ".")]
    for group in (arms, rest):
        parts = [f"{limb} is {text}" for limb, text in group if text]
        if parts:
            joiner = ph.pick((", and ", "; "), f"{slot}.join.{group[0][0]}") if len(parts) == 2 else ""
            sentences.append(_cap(joiner.join(parts) if joiner else parts[0]) + ".")
    return " ".join(sentences)


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def describe_record(record: Record, seed: int = 0, attributes: bool = True) -> str:
    """A deterministic pose description of ``record`` in the LLM template (see the module docstring).
    A bird record (CUB parts, no people) is described by :func:`focusclip.describe.birds.describe_bird`,
    which names the species when ``attributes``."""
    from focusclip.describe.birds import describe_bird, is_bird_record

    if is_bird_record(record):
        return describe_bird(record, seed=seed, species=attributes)
    people = [p for p in (record.get("people") or []) if isinstance(p, dict)]
    skeletons = [_Skeleton.from_person(p) for p in people]
    ph = _Phraser(seed, record_id(record))
    postures = [posture(sk) for sk in skeletons]
    text = [_first_sentence(len(people), activity_phrase(record.get("activity")))]
    general = _general_sentence(ph, postures, skeletons)
    labels_phrase = attribute_phrase(record.get("labels")) if attributes else None
    if labels_phrase and len(people) != 1:
        text.append(f"The main subject is {labels_phrase}.")
    if general:
        text.append(general)
    locations = _locations(record, people, skeletons)
    for i, (person, sk, post, loc) in enumerate(zip(people, skeletons, postures, locations)):
        attrs = attribute_phrase(person.get("labels")) if attributes else None
        if attrs is None and labels_phrase and len(people) == 1:
            attrs = labels_phrase
        text.append(_person_sentences(ph, i, loc, sk, post, attrs))
    return " ".join(text)


class RulesDescriber:
    """The rule-based backend for the job driver (``focusclip describe --backend rules``)."""

    name = "rules"
    model = "rules"
    prompt_version = RULES_VERSION

    def __init__(self, seed: int = 0, attributes: bool = True):
        self.seed, self.attributes = seed, attributes
        self.parameters: dict[str, Any] = {"seed": seed, "attributes": attributes}

    def describe(self, record: Record) -> Outcome:
        return Outcome(description=describe_record(record, seed=self.seed, attributes=self.attributes))
