"""The ``ifeval-like`` task: procedural, verifiable instruction following with IFEval-style constraints.

A question asks the model to echo a few words under 1-3 constraints, ``echo <content> |<c1>|<c2>``; the answer is
the content rewritten to satisfy every constraint. Each constraint code is a skill, and its checker mirrors an
IFEval instruction (``if_verifiable.ifeval.instructions``; the tests cross-check them). Everything is sized for the
default char-level student: questions of at most 60 characters, answers of at most 44, printable ASCII only.

>>> task = InstructionTask()
>>> question = "echo Red fox, big cat |lower|end:ok"
>>> canonical_answer(parse(question))
'red fox, big cat ok'
>>> task.critique(question, "Red fox, big cat")
"Fails: all letters lowercase; ends with the word 'ok'."
>>> task.critique(question, "ok")  # the implicit "echo" check stops degenerate answers
"Fails: keeps the words 'red fox big cat'."
>>> task.repair(question, "red fox, big cat", "end")
'red fox, big cat ok'

**The echo check.** Besides its constraints every response must keep the content: its ``\\w+`` words (lowercased,
placeholders and titles left out when ``slot``/``title`` is asked for), less the words the constraints add
(start/end/has/ps/title words and the ``p``, ``s`` of ``P.S.``), must equal the content's words less those
``no:W`` removes; under ``max:N`` a non-empty prefix of them (truncation drops words from the end).

**Canonical answers** (:func:`canonical_answer`) have the layout ``[start W] [<<title>>] content [has W] [[x]]
[P.S. ps] [end W]``, built in this order: removals (``no`` drops the word and its comma, a trailing comma goes,
``nocomma`` drops commas), additions around the content as laid out, structure (``bullets``: ``* word`` per content
word), case (``lower``/``upper``), wraps (``quote``, then ``json``); ``max`` then drops content words from the end
until fewer than N words remain. Combinations whose canonical answer fails a check (``upper`` with ``start``,
``end`` after ``quote`` and ``json``...) are never generated.

**No newlines.** The default student's vocabulary has no ``\\n``, so bullet lists are one line, ``* red * fox``;
their checker counts ``*``/``-`` markers at the start or after whitespace (outside surrounding quotes) where
IFEval's counts them at line starts. The two agree once each marker is moved onto its own line.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from skills.errors import InvalidConfig, InvalidPlan, unknown_name_error
from skills.task import CheckResult, Diagnosis, Example, Skill, Verdict, Verification, normalize_question

MAX_QUESTION_CHARS = 60
MAX_ANSWER_CHARS = 44
MAX_CONSTRAINTS = 3
MAX_PARSE_CHARS = 200  # a longer "question" is rejected before any regex runs over it
PRINTABLE = frozenset(chr(c) for c in range(32, 127))  # the default student's characters (no newline)

CONTENT_WORDS = (
    "red", "fox", "big", "cat", "dog", "hat", "cup", "map", "pen", "box", "bus", "car", "egg", "fig", "jam",
    "key", "leg", "mud", "net", "owl", "pig", "rat", "sea", "tea", "toy", "van", "web", "yak", "zoo", "ant",
    "bee", "cow", "elk", "gem", "hen", "ice", "jar", "kit", "lamp", "milk", "nest", "oak", "pear", "rain",
    "ship", "tree", "wolf", "bird", "cake", "door", "fish", "frog", "gold", "home", "kite", "lake", "moon",
    "nut", "rose", "sand", "star", "wind",
)  # fmt: skip
# Words the constraints add: none is a substring of a content word or the other way round (``has`` and ``end``
# match substrings, as IFEval's do), so an added word never satisfies or spoils another check by accident.
KEYWORDS = (
    "ok", "yes", "now", "done", "bye", "wow", "yay", "fine", "sure", "cool", "good", "yup", "soon", "amen",
    "yep", "alas", "also", "thus", "hey", "woo",
)  # fmt: skip

_WORD = re.compile(r"\w+")  # IFEval counts words with nltk's RegexpTokenizer(r"\w+"): the same tokens
_BULLET = re.compile(r"(?:^|(?<=\s))(?:\*(?=[^*])|-)")
_PLACEHOLDER = re.compile(r"\[.*?\]")
_TITLE = re.compile(r"<<[^\n]+?>>")
_CONTENT_TOKEN = re.compile(r"[A-Za-z]+,?")
_CONSTRAINT = re.compile(r"([a-z]+)(?::(.*))?")
_ARG = {"word": re.compile(r"[A-Za-z]{1,12}"), "count": re.compile(r"[1-9][0-9]?")}
_ADDED = ("start", "end", "has", "ps", "title")  # constraints whose argument is a word the answer adds


@dataclass(frozen=True)
class Constraint:
    code: str
    arg: str = ""

    def __str__(self) -> str:
        return f"{self.code}:{self.arg}" if self.arg else self.code


@dataclass(frozen=True)
class Request:
    """A parsed question: the content to echo and its constraints (each code at most once), in prompt order."""

    content: str
    constraints: tuple[Constraint, ...]

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(c.code for c in self.constraints)

    def arg(self, code: str) -> str:
        return next((c.arg for c in self.constraints if c.code == code), "")

    def without(self, code: str) -> Request:
        return replace(self, constraints=tuple(c for c in self.constraints if c.code != code))

    def __str__(self) -> str:
        return f"echo {self.content} |" + "|".join(map(str, self.constraints))


@dataclass(frozen=True)
class ConstraintSpec:
    code: str
    kind: str  # "flag" (no argument), "word" or "count"
    category: str
    ifeval_id: str
    summary: str  # the skill's description, e.g. "ends with the word W"
    template: str  # one check's description, e.g. "ends with the word '{arg}'"
    check: Callable[[str, Request], bool]
    repair: Callable[[str, Request], str]  # called on a response that fails ``check``


# --- helpers ----------------------------------------------------------------------------------------------------


def _count_words(text: str) -> int:
    return len(_WORD.findall(text))


def _core(text: str) -> tuple[int, int]:
    """Bounds of ``text.strip().strip('"')`` inside ``text`` (what IFEval's end checker reads)."""
    start, end = len(text) - len(text.lstrip()), len(text.rstrip())
    while start < end and text[start] == '"':
        start += 1
    while end > start and text[end - 1] == '"':
        end -= 1
    return start, end


def _like(piece: str, text: str) -> str:
    """``piece`` in the case of ``text`` when that is all lower or all upper case."""
    return piece.lower() if text.islower() else piece.upper() if text.isupper() else piece


def _insert(text: str, pos: int, piece: str) -> str:
    """``piece`` inserted at ``pos`` with a space on each side that touches text (not a space or a quote)."""
    left, right = text[:pos], text[pos:]
    pad_left = " " if left and not left[-1].isspace() and left[-1] != '"' else ""
    pad_right = " " if right and not right[0].isspace() and right[0] != '"' else ""
    return f"{left}{pad_left}{piece}{pad_right}{right}"


def _at_end(text: str, piece: str) -> str:
    return _insert(text, _core(text)[1], _like(piece, text))


def _cut(text: str, start: int, end: int) -> str:
    """``text`` without the word at ``[start, end)``, its comma, its bullet marker and the spaces before it."""
    if text[end : end + 1] == ",":
        end += 1
    marker = re.search(r'(?:^|(?<=[\s"]))[*-][ \t]*$', text[:start])
    left = marker.start() if marker else start
    while left > 0 and text[left - 1] in " \t":
        left -= 1
    rest = text[end:]
    if left == 0 or text[left - 1].isspace() or text[left - 1] == '"':
        rest = rest.lstrip(" \t")
    return text[:left] + rest


def _added_words(request: Request) -> set[str]:
    return set(_added_counts(request))


def _added_counts(request: Request) -> Counter[str]:
    """How often each word the constraints add may appear: once per constraint that adds it (``P.S.`` adds p, s)."""
    counts = Counter(w.lower() for code in _ADDED for w in _WORD.findall(request.arg(code)))
    return counts + (Counter({"p": 1, "s": 1}) if "ps" in request.codes else Counter())


def _surplus(response: str, request: Request) -> list[re.Match]:
    """The occurrences of added words beyond what the constraints add (a stray 'ok' before 'P.S. ok'), latest
    first; the one a constraint's place needs (the first word for start, the last for end, after P.S.) is kept."""
    matches = list(_WORD.finditer(_masked(response, request)))
    allowance = _added_counts(request)
    seen = Counter(m.group().lower() for m in matches if m.group().lower() in allowance)
    protected = set()
    if matches and request.arg("start") and matches[0].group() == request.arg("start"):
        protected.add(0)
    if matches and request.arg("end") and matches[-1].group().lower() == request.arg("end").lower():
        protected.add(len(matches) - 1)
    for i, m in enumerate(matches):
        if m.group().lower() == "s" and i + 1 < len(matches) and request.arg("ps"):
            protected.add(i + 1)
    out = []
    for i in reversed(range(len(matches))):
        word = matches[i].group().lower()
        if word in allowance and seen[word] > allowance[word] and i not in protected:
            seen[word] -= 1
            out.append(matches[i])
    return out


def _masked(text: str, request: Request) -> str:
    """``text`` with placeholders and titles blanked (same length) when the request asks for them."""
    for code, pattern in (("slot", _PLACEHOLDER), ("title", _TITLE)):
        if code in request.codes:
            text = pattern.sub(lambda m: " " * len(m.group()), text)
    return text


def _content_tokens(request: Request) -> list[str]:
    """The content's tokens less those ``no:W`` removes and the words the constraints add."""
    drop = _added_words(request) | {request.arg("no").lower()}
    return [t for t in request.content.split() if t.rstrip(",").lower() not in drop]


def _render(request: Request, tokens: list[str]) -> str:
    codes, arg = request.codes, request.arg
    tokens = [t.replace(",", "") if "nocomma" in codes else t for t in tokens]
    if tokens:
        tokens[-1] = tokens[-1].rstrip(",")
    body = " ".join(f"* {t}" if "bullets" in codes else t for t in tokens)
    parts = [
        arg("start"),
        f"<<{arg('title')}>>" if "title" in codes else "",
        body,
        arg("has"),
        "[x]" if "slot" in codes else "",
        f"P.S. {arg('ps')}" if "ps" in codes else "",
        arg("end"),
    ]
    text = " ".join(p for p in parts if p)
    text = text.lower() if "lower" in codes else text.upper() if "upper" in codes else text
    text = f'"{text}"' if "quote" in codes else text
    return json.dumps(text) if "json" in codes else text


def _kept_tokens(request: Request) -> list[str]:
    tokens = _content_tokens(request)
    if "max" in request.codes:
        limit = int(request.arg("max"))
        while tokens and _count_words(_render(request, tokens)) >= limit:
            tokens.pop()
    return tokens


def canonical_answer(request: Request) -> str:
    """The reference answer: the content with the constraints applied in the documented order and layout."""
    return _render(request, _kept_tokens(request))


def parse(question: str) -> Request:
    """The request a question states, read from its text alone.

    Raises:
        InvalidPlan: not ``echo <words> |<constraint>[|...]`` in printable ASCII, an unknown constraint, a bad
            argument or a constraint given twice.
    """
    example = "Expects a question like 'echo Red fox, big cat |lower|end:ok'"
    if not isinstance(question, str) or len(question) > MAX_PARSE_CHARS:
        raise InvalidPlan(f"{example} (a string of at most {MAX_PARSE_CHARS} characters); actual {question!r:.80}.")
    foreign = sorted(set(question) - PRINTABLE)
    if foreign:
        raise InvalidPlan(f"{example} in printable ASCII (no newlines); actual characters {foreign}.")
    head, bar, tail = question.strip().partition("|")
    words = head.split()
    if not bar or words[:1] != ["echo"] or not 1 < len(words) <= 9:
        raise InvalidPlan(f"{example}: 'echo', 1-8 words, then '|' and the constraints; actual {question!r}.")
    for token in words[1:]:
        if not _CONTENT_TOKEN.fullmatch(token):
            raise InvalidPlan(f"{example}: content words are letters with an optional comma; actual {token!r}.")
    constraints: list[Constraint] = []
    for item in (part.strip() for part in tail.split("|")):
        match = _CONSTRAINT.fullmatch(item)
        if match is None or match.group(1) not in CONSTRAINTS:
            name = match.group(1) if match else item
            raise InvalidPlan(f"{example}; {unknown_name_error('constraint', name, CONSTRAINTS)}")
        code, arg = match.group(1), match.group(2) or ""
        kind = CONSTRAINTS[code].kind
        if (kind == "flag") != (match.group(2) is None) or (kind != "flag" and not _ARG[kind].fullmatch(arg)):
            shape = {"flag": code, "word": f"{code}:<letters>", "count": f"{code}:<1-99>"}[kind]
            raise InvalidPlan(f"Expects the constraint as {shape!r}; actual {item!r} in {question!r}.")
        if code in (c.code for c in constraints):
            raise InvalidPlan(f"Expects each constraint at most once; actual {code!r} twice in {question!r}.")
        constraints.append(Constraint(code, arg))
    if len(constraints) > MAX_CONSTRAINTS:
        raise InvalidPlan(f"Expects 1-{MAX_CONSTRAINTS} constraints; actual {len(constraints)} in {question!r}.")
    return Request(" ".join(words[1:]), tuple(constraints))


# --- checkers (IFEval's semantics unless said) and their minimal-edit repairs ----------------------------------


def _check_lower(response: str, request: Request) -> bool:
    """IFEval's ``str.islower()`` test without its language detection (langdetect cannot tell 2-4 words apart)."""
    return response.islower()


def _check_upper(response: str, request: Request) -> bool:
    """IFEval's ``str.isupper()`` test, without language detection as for ``lower``."""
    return response.isupper()


def _check_nocomma(response: str, request: Request) -> bool:
    return "," not in response


def _check_quote(response: str, request: Request) -> bool:
    text = response.strip()
    return len(text) > 1 and text[0] == '"' and text[-1] == '"'


def _check_end(response: str, request: Request) -> bool:
    return response.strip().strip('"').lower().endswith(request.arg("end").strip().lower())


def _check_start(response: str, request: Request) -> bool:
    """IFEval's ``^\\s*W`` (case-sensitive), on the first non-blank line only: IFEval's accepts any line."""
    return re.match(r"\s*" + re.escape(request.arg("start")), response) is not None


def _check_has(response: str, request: Request) -> bool:
    return re.search(re.escape(request.arg("has")), response, flags=re.IGNORECASE) is not None


def _check_no(response: str, request: Request) -> bool:
    return re.search(rf"\b{re.escape(request.arg('no'))}\b", response, flags=re.IGNORECASE) is None


def _check_max(response: str, request: Request) -> bool:
    return _count_words(response) < int(request.arg("max"))


def _bullets(response: str) -> int:
    start, end = _core(response)
    return len(_BULLET.findall(response[start:end]))


def _check_bullets(response: str, request: Request) -> bool:
    return _bullets(response) == int(request.arg("bullets"))


def _check_json(response: str, request: Request) -> bool:
    text = response.strip()
    for fence in ("```json", "```Json", "```JSON", "```"):
        text = text.removeprefix(fence)
    try:
        json.loads(text.removesuffix("```").strip())
    except ValueError:
        return False
    return True


def _check_ps(response: str, request: Request) -> bool:
    """IFEval's pattern for the marker ``P.S.`` (anywhere, case-insensitive), followed here by the word W."""
    word = re.escape(request.arg("ps").lower())
    return re.search(rf"p\.\s?s\.\s*{word}\b", response.lower()) is not None


def _check_title(response: str, request: Request) -> bool:
    """A ``<<title>>`` as IFEval's, and here the title must be the word W (case-insensitive)."""
    word = re.escape(request.arg("title"))
    return re.search(rf"<<\s*{word}\s*>>", response, flags=re.IGNORECASE) is not None


def _check_slot(response: str, request: Request) -> bool:
    return _PLACEHOLDER.search(response) is not None


def _repair_quote(response: str, request: Request) -> str:
    text = response.strip()
    text = text if text.startswith('"') and len(text) > 1 else f'"{text}'
    return text if text.endswith('"') and len(text) > 1 else f'{text}"'


def _repair_start(response: str, request: Request) -> str:
    lead = len(response) - len(response.lstrip())
    rest = response[lead:]
    return response[:lead] + request.arg("start") + (" " if rest and not rest[0].isspace() else "") + rest


def _repair_no(response: str, request: Request) -> str:
    pattern = re.compile(rf"\b{re.escape(request.arg('no'))}\b", flags=re.IGNORECASE)
    while match := pattern.search(response):
        response = _cut(response, match.start(), match.end())
    return response


def _repair_max(response: str, request: Request) -> str:
    added = _added_words(request)
    while _count_words(response) >= int(request.arg("max")):
        masked = _masked(response, request)
        words = list(_WORD.finditer(response))
        content = [m for m in _WORD.finditer(masked) if m.group().lower() not in added]
        last = (content or words)[-1]
        response = _cut(response, last.start(), last.end())
    return response


def _repair_bullets(response: str, request: Request) -> str:
    wanted, added = int(request.arg("bullets")), _added_words(request)
    for _ in range(len(response) + wanted + 2):
        count = _bullets(response)
        if count == wanted:
            break
        start, end = _core(response)
        if count > wanted:  # drop the last marker (its item joins the one before)
            last = list(_BULLET.finditer(response[start:end]))[-1]
            after = start + last.end()
            while after < len(response) and response[after] in " \t":
                after += 1
            response = response[: start + last.start()] + response[after:]
            continue
        starts = [
            m
            for m in _WORD.finditer(response, start, end)
            if (m.start() == start or response[m.start() - 1].isspace())
            and not re.search(r"(?:^|(?<=\s))[*-][ \t]*$", response[start : m.start()])
        ]
        starts.sort(key=lambda m: m.group().lower() in added)  # content words first
        if starts:
            response = response[: starts[0].start()] + "* " + response[starts[0].start() :]
        elif re.search(r"(?:^|(?<=\s))\*$", response[start:end]):  # a last '*' with nothing after it counts as '-'
            response = response[: end - 1] + "-" + response[end:]
        else:  # no word left to mark: an empty '-' item
            response = _at_end(response, "-")
    return response


def _repair_json(response: str, request: Request) -> str:
    return json.dumps(response)


def _repair_title(response: str, request: Request) -> str:
    return _insert(response, _core(response)[0], _like(f"<<{request.arg('title')}>>", response))


def _repair_echo(response: str, request: Request) -> str:
    """The content words (less those removed, truncated as the canonical answer is) put in place of the span from
    the first to the last content word of ``response``, or, when it has none, after its start word and title."""
    for match in _surplus(response, request):  # latest first, so earlier positions stay valid
        response = _cut(response, match.start(), match.end())
    tokens = _kept_tokens(request)
    tokens = [t.replace(",", "") for t in tokens] if "nocomma" in request.codes else tokens
    words = _like(" ".join(tokens).rstrip(","), response)
    added = _added_words(request)
    content = [m for m in _WORD.finditer(_masked(response, request)) if m.group().lower() not in added]
    if content:
        return response[: content[0].start()] + words + response[content[-1].end() :]
    pos = _core(response)[0]
    start = request.arg("start")
    if start and response[pos:].startswith(start):
        pos += len(start)
    title = re.match(r"\s*<<[^\n]+?>>", response[pos:]) if "title" in request.codes else None
    return _insert(response, pos + (title.end() if title else 0), words)


def _check_echo(response: str, request: Request) -> bool:
    # Each added word is set aside as often as the constraints add it: a second, stray copy counts against the
    # content (the actor's habit of ending every answer with a keyword is not "keeping the words").
    allowance = _added_counts(request)
    expected = [w.lower() for t in _content_tokens(request) for w in _WORD.findall(t)]
    got = []
    for word in (w.lower() for w in _WORD.findall(_masked(response, request))):
        if allowance[word] > 0:
            allowance[word] -= 1
        else:
            got.append(word)
    if "max" in request.codes:
        return got == expected[: len(got)] and (bool(got) or not expected)
    return got == expected


def _lower(response: str, request: Request) -> str:
    return response.lower()


def _upper(response: str, request: Request) -> str:
    return response.upper()


def _no_commas(response: str, request: Request) -> str:
    return response.replace(",", "")


def _add(code: str, piece: str) -> Callable[[str, Request], str]:
    return lambda response, request: _at_end(response, piece.format(arg=request.arg(code)))


CONSTRAINTS: dict[str, ConstraintSpec] = {
    spec.code: spec
    for spec in (
        ConstraintSpec("lower", "flag", "case", "change_case:english_lowercase", "all letters lowercase",
                       "all letters lowercase", _check_lower, _lower),
        ConstraintSpec("upper", "flag", "case", "change_case:english_capital", "all letters uppercase",
                       "all letters uppercase", _check_upper, _upper),
        ConstraintSpec("nocomma", "flag", "punctuation", "punctuation:no_comma", "no commas", "no commas",
                       _check_nocomma, _no_commas),
        ConstraintSpec("quote", "flag", "startend", "startend:quotation", "wrapped in double quotes",
                       "wrapped in double quotes", _check_quote, _repair_quote),
        ConstraintSpec("end", "word", "startend", "startend:end_checker", "ends with the word W",
                       "ends with the word '{arg}'", _check_end, _add("end", "{arg}")),
        ConstraintSpec("start", "word", "startend", "multi-turn:constrained_start", "starts with the word W",
                       "starts with the word '{arg}'", _check_start, _repair_start),
        ConstraintSpec("has", "word", "keywords", "keywords:existence", "includes the keyword W",
                       "includes the keyword '{arg}'", _check_has, _add("has", "{arg}")),
        ConstraintSpec("no", "word", "keywords", "keywords:forbidden_words", "does not use the word W",
                       "does not use the word '{arg}'", _check_no, _repair_no),
        ConstraintSpec("max", "count", "length", "length_constraints:number_words", "fewer than N words",
                       "fewer than {arg} words", _check_max, _repair_max),
        ConstraintSpec("bullets", "count", "format", "detectable_format:number_bullet_lists",
                       "exactly N bullet points (* item), on one line", "exactly {arg} bullet points",
                       _check_bullets, _repair_bullets),
        ConstraintSpec("json", "flag", "format", "detectable_format:json_format", "valid JSON", "valid JSON",
                       _check_json, _repair_json),
        ConstraintSpec("ps", "word", "content", "detectable_content:postscript", "a postscript 'P.S. W'",
                       "a postscript 'P.S. {arg}'", _check_ps, _add("ps", "P.S. {arg}")),
        ConstraintSpec("title", "word", "format", "detectable_format:title", "a title <<W>>", "the title '<<{arg}>>'",
                       _check_title, _repair_title),
        ConstraintSpec("slot", "flag", "content", "detectable_content:number_placeholders",
                       "a placeholder in square brackets, like [x]", "a placeholder like [x]", _check_slot,
                       _add("slot", "[x]")),
    )
}  # fmt: skip


def _describe(constraint: Constraint) -> str:
    return CONSTRAINTS[constraint.code].template.format(arg=constraint.arg)


def _echo_description(request: Request) -> str:
    words = " ".join(w.lower() for t in _content_tokens(request) for w in _WORD.findall(t))
    return f"keeps the first of the words '{words}'" if "max" in request.codes else f"keeps the words '{words}'"


def check_request(request: Request, response: str) -> list[CheckResult]:
    """One result per constraint in prompt order, then the echo check."""
    results = [
        CheckResult(c.code, CONSTRAINTS[c.code].check(response, request), _describe(c)) for c in request.constraints
    ]
    return [*results, CheckResult("echo", _check_echo(response, request), _echo_description(request))]


class InstructionTask:
    """IFEval-like constraints on echoing a few words; one skill per constraint code (:data:`CONSTRAINTS`).

    Example:
        >>> import numpy as np
        >>> task = InstructionTask(["lower", "end"], max_constraints=2)
        >>> ex = task.generate("lower", 1, np.random.default_rng(0))[0]
        >>> task.score(ex, ex.answer), task.verify(ex).verdict
        (1.0, <Verdict.CORRECT: 'correct'>)
    """

    name = "ifeval-like"
    # Generation room a student built by name needs: answers of up to 44 characters, one token each with the
    # character tokenizer, and its end token.
    student_defaults = {"max_new_tokens": MAX_ANSWER_CHARS + 4}  # noqa: RUF012 - read only

    def __init__(self, skills: Sequence[str] | str | None = None, max_constraints: int = MAX_CONSTRAINTS) -> None:
        if isinstance(skills, str):
            skills = [s.strip() for s in skills.split(",") if s.strip()]
        chosen = list(dict.fromkeys(CONSTRAINTS if skills is None else skills))
        for code in chosen:
            if code not in CONSTRAINTS:
                raise unknown_name_error("instruction constraint", code, CONSTRAINTS)
        if not chosen:
            raise InvalidConfig(f"Expects at least one constraint code (of {', '.join(CONSTRAINTS)}); actual none.")
        if isinstance(max_constraints, bool) or not isinstance(max_constraints, int):
            raise InvalidConfig(f"Expects max_constraints as an int 1-{MAX_CONSTRAINTS}; actual {max_constraints!r}.")
        if not 1 <= max_constraints <= MAX_CONSTRAINTS:
            raise InvalidConfig(
                f"Expects max_constraints from 1 to {MAX_CONSTRAINTS} (questions must fit {MAX_QUESTION_CHARS} "
                f"characters); actual {max_constraints}."
            )
        self._codes = tuple(chosen)
        self.max_constraints = max_constraints

    @property
    def skills(self) -> list[Skill]:
        return [Skill(code, CONSTRAINTS[code].summary, CONSTRAINTS[code].category) for code in self._codes]

    def _known(self, skill: str) -> None:
        if skill not in self._codes:
            raise unknown_name_error("instruction constraint", skill, self._codes)

    def generate(self, skill: str, n: int, rng: np.random.Generator) -> list[Example]:
        """``n`` examples whose first constraint is ``skill``, with 0 to ``max_constraints - 1`` other skills of
        this task; each constraint bites (the canonical answer without it fails it) and the canonical answer
        passes every check within the size limits (otherwise the draw is redone)."""
        self._known(skill)
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise InvalidPlan(f"Expects a non-negative integer number of examples; actual {n!r}.")
        examples = []
        for _ in range(int(n)):
            for _attempt in range(10_000):
                example = self._draw(skill, rng)
                if example is not None:
                    examples.append(example)
                    break
            else:  # pragma: no cover - every single skill generates alone within a few draws
                raise InvalidConfig(f"Expects skill {skill!r} to be satisfiable; no valid example in 10000 draws.")
        return examples

    def _draw(self, skill: str, rng: np.random.Generator) -> Example | None:
        pool = [code for code in self._codes if code != skill]
        extra = int(rng.integers(0, self.max_constraints))
        codes = [skill, *(pool[i] for i in rng.permutation(len(pool))[:extra])]
        size = int(rng.integers(2, 5))
        tokens = []
        for i, index in enumerate(rng.permutation(len(CONTENT_WORDS))[:size]):
            word = CONTENT_WORDS[index].capitalize() if rng.random() < 0.3 else CONTENT_WORDS[index]
            tokens.append(word + "," if i < size - 1 and rng.random() < 0.25 else word)
        args = {c: KEYWORDS[int(rng.integers(len(KEYWORDS)))] for c in codes if CONSTRAINTS[c].kind == "word"}
        if "no" in codes:
            args["no"] = tokens[int(rng.integers(size))].rstrip(",").lower()

        def request(*leave_out: str) -> Request:
            return Request(" ".join(tokens), tuple(Constraint(c, args.get(c, "")) for c in codes if c not in leave_out))

        if "max" in codes:  # N between "one content word kept" and "all kept": the limit always bites
            loose = request("max", "bullets")
            added = _count_words(_render(loose, []))
            low, high = added + 2, added + len(_kept_tokens(loose))
            if low > high:
                return None
            args["max"] = str(int(rng.integers(low, high + 1)))
        if "bullets" in codes:
            args["bullets"] = str(len(_kept_tokens(request("bullets"))))
        full = request()
        question, answer = str(full), canonical_answer(full)
        if len(question) > MAX_QUESTION_CHARS or len(answer) > MAX_ANSWER_CHARS or not set(answer) <= PRINTABLE:
            return None
        if args.get("bullets") == "0" or not all(r.passed for r in check_request(full, answer)):
            return None
        if any(CONSTRAINTS[c].check(canonical_answer(full.without(c)), full) for c in codes):
            return None
        return Example(question, answer, skill, {"constraints": [str(c) for c in full.constraints]})

    def check(self, question: str, response: str) -> list[CheckResult]:
        """One result per constraint in prompt order, then ``echo``. Raises InvalidPlan for a malformed question."""
        return check_request(parse(question), response)

    def score(self, example: Example, answer: str) -> float:
        """The fraction of checks (constraints and echo) ``answer`` passes; 0.0 for a malformed question."""
        if not isinstance(answer, str):
            return 0.0
        try:
            results = self.check(example.question, answer)
        except InvalidPlan:
            return 0.0
        return sum(r.passed for r in results) / len(results)

    def all_passed(self, question: str, response: str) -> bool:
        return all(r.passed for r in self.check(question, response))

    def critique(self, question: str, response: str) -> str:
        failed = [r.description for r in self.check(question, response) if not r.passed]
        return f"Fails: {'; '.join(failed)}." if failed else "Follows every instruction."

    def repair(self, question: str, response: str, name: str) -> str:
        """``response`` with the smallest sensible edit that passes check ``name`` (a constraint code of the
        question or ``"echo"``); other checks may break. Unchanged when it already passes."""
        request = parse(question)
        if name not in (*request.codes, "echo"):
            raise unknown_name_error(f"check of {question!r}", name, [*request.codes, "echo"])
        if name == "echo":
            return response if _check_echo(response, request) else _repair_echo(response, request)
        spec = CONSTRAINTS[name]
        return response if spec.check(response, request) else spec.repair(response, request)

    def verify(self, example: Example) -> Verification:
        """From the question text alone: MALFORMED (it does not parse, or the question or answer breaks the size
        limits or printable ASCII), WRONG_SKILL (``example.skill`` is none of its constraints), WRONG_ANSWER (a
        check fails), else CORRECT.

        Raises:
            UnknownName: ``example.skill`` is not a skill of this task.
        """
        self._known(example.skill)
        try:
            request = parse(example.question)
        except InvalidPlan as error:
            return Verification(Verdict.MALFORMED, str(error))
        if example.skill not in request.codes:
            return Verification(
                Verdict.WRONG_SKILL, f"skill {example.skill!r} is not a constraint of {example.question!r}"
            )
        if len(example.question) > MAX_QUESTION_CHARS:
            return Verification(
                Verdict.MALFORMED,
                f"expects a question of at most {MAX_QUESTION_CHARS} characters (the default student's context); "
                f"given {len(example.question)}",
            )
        if not isinstance(example.answer, str) or not set(example.answer) <= PRINTABLE:
            return Verification(
                Verdict.MALFORMED, f"expects the answer in printable ASCII (no newlines); given {example.answer!r}"
            )
        if len(example.answer) > MAX_ANSWER_CHARS:
            return Verification(
                Verdict.MALFORMED,
                f"expects an answer of at most {MAX_ANSWER_CHARS} characters; given {len(example.answer)}",
            )
        failed = [r.description for r in check_request(request, example.answer) if not r.passed]
        if failed:
            return Verification(Verdict.WRONG_ANSWER, f"Fails: {'; '.join(failed)}.")
        return Verification(Verdict.CORRECT, "Follows every instruction.")

    def heldout_key(self, question: str) -> str:
        """``echo`` + the content words lowercased without commas + the constraints lowercased and sorted, so
        ``echo Red fox, |lower|nocomma`` and ``echo red fox |nocomma|lower`` share a key (commas and case of the
        content change the answer only under some constraints: merging them keeps more away from training,
        which is harmless). A malformed question falls back to :func:`skills.task.normalize_question`."""
        try:
            request = parse(question)
        except InvalidPlan:
            return normalize_question(question)
        words = " ".join(request.content.replace(",", "").lower().split())
        return f"echo {words} |" + "|".join(sorted(str(c).lower() for c in request.constraints))

    def diagnose(self, question: str, answer: str, skill: str) -> Diagnosis:
        """``failed:<names>`` and the missing skills: the failed constraints (of this task), the question's own
        ``skill`` for a failed echo check. ``unparseable_question`` for a malformed question."""
        self._known(skill)
        try:
            results = self.check(question, answer if isinstance(answer, str) else "")
        except InvalidPlan:
            return Diagnosis("unparseable_question", (skill,))
        failed = [r.name for r in results if not r.passed]
        if not failed:
            return Diagnosis("correct")
        missing = [name if name in self._codes else skill for name in failed]
        return Diagnosis("failed:" + ",".join(failed), tuple(dict.fromkeys(missing)))
