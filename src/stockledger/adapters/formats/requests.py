"""What arrives: events (JSON lines) and setup files (YAML), validated once at the edge.

Problem: idempotency must compare the *meaning* of two sends, not their bytes
("5.00" and 5 are the same quantity, the one-line shorthand and a one-element
``lines`` list are the same event, ``seq`` is transport metadata). So every
parsed event gets a canonical form (sorted keys, lines form, numbers in
canonical decimal text, default source) and a 128-bit BLAKE2b hash of it.
The canonical form is also what is stored, so a replay re-reads exactly what
was accepted.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from decimal import Decimal
from typing import Annotated, Any, Callable, Literal, NamedTuple

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from stockledger import limits
from stockledger.domain.money import decimal_text

Number = Annotated[Decimal, Field(allow_inf_nan=False)]
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# No NUL characters: PostgreSQL text cannot hold them (and no sender means them).
Text = Annotated[str, Field(min_length=1, max_length=limits.ID_LENGTH_MAX, pattern=r"^[^\x00]*$")]


def storable(text: str) -> str:
    """Raw input as it can be stored and shown (NUL characters escaped)."""
    return text.replace("\x00", "\\u0000") if "\x00" in text else text


class LineRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sku: Text | None = None
    qty: Number | None = None
    uom: Text | None = None
    unit_cost: Number | None = None
    unit_price: Number | None = None
    lot: Text | None = None


_LINE_FIELDS = ("sku", "qty", "uom", "unit_cost", "unit_price", "lot")


class EventRequest(BaseModel):
    """One event as sent (SPEC 3), structurally valid."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    id: Text
    source: Text = "default"
    seq: int | None = Field(None, ge=0)
    type: Text
    date: dt.date | None = None
    location: Text | None = None
    from_: Text | None = Field(None, alias="from")
    to: Text | None = None
    lines: list[LineRequest] | None = Field(None, max_length=limits.LINES_MAX)
    sku: Text | None = None
    qty: Number | None = None
    uom: Text | None = None
    unit_cost: Number | None = None
    unit_price: Number | None = None
    lot: Text | None = None
    ref: Text | None = None
    ref_source: Text | None = None
    reason: Text | None = None
    order: Text | None = None
    amount: Number | None = None
    refs: list[Text] | None = None
    allocate: Literal["value", "qty"] | None = None
    extra_cost: Number | None = None

    @property
    def date_ymd(self) -> int | None:
        day = self.date
        return None if day is None else day.year * 10000 + day.month * 100 + day.day

    @field_validator("date", mode="before")
    @classmethod
    def _date_text(cls, value: Any) -> Any:
        """Only YYYY-MM-DD: pydantic alone would read "1767312000" as a timestamp."""
        if value is None or (isinstance(value, dt.date) and not isinstance(value, dt.datetime)):
            return value
        if not isinstance(value, str) or not _DATE.fullmatch(value):
            raise ValueError("must be a date written YYYY-MM-DD")
        return value

    def line_inputs(self) -> list[LineRequest] | tuple["EventRequest", ...]:
        if self.lines is not None:
            if any(getattr(self, f) is not None for f in _LINE_FIELDS):
                raise ValueError("give either lines or the one-line fields (sku, qty, ...), "
                                 "not both")
            return self.lines
        if any(getattr(self, f) is not None for f in _LINE_FIELDS):
            return (self,)
        return ()


def canonical(req: EventRequest) -> dict[str, Any]:
    """The meaning of an event, for idempotency and storage (SPEC 10)."""
    doc: dict[str, Any] = {"id": req.id, "source": req.source, "type": req.type}
    if req.date is not None:
        doc["date"] = req.date.isoformat()
    for name, key in (("location", "location"), ("from_", "from"), ("to", "to"),
                      ("ref", "ref"), ("reason", "reason"), ("order", "order"),
                      ("allocate", "allocate")):
        value = getattr(req, name)
        if value is not None:
            doc[key] = value
    if req.ref_source is not None and req.ref_source != req.source:
        doc["ref_source"] = req.ref_source
    for name in ("amount", "extra_cost"):
        value = getattr(req, name)
        if value is not None:
            doc[name] = decimal_text(value)
    if req.refs is not None:
        doc["refs"] = list(req.refs)
    lines = []
    if req.lines is not None:
        sources: Any = req.lines
        for name in _LINE_FIELDS:  # both forms given: keep the stray fields (the event is invalid)
            value = getattr(req, name)
            if value is not None:
                doc[name] = decimal_text(value) if isinstance(value, Decimal) else value
    else:
        sources = (req,) if any(getattr(req, f) is not None for f in _LINE_FIELDS) else ()
    for line in sources:
        item: dict[str, Any] = {}
        for name in _LINE_FIELDS:
            value = getattr(line, name)
            if value is not None:
                item[name] = decimal_text(value) if isinstance(value, Decimal) else value
        lines.append(item)
    if lines or req.lines is not None:
        doc["lines"] = lines  # an empty list stays an empty list
    return doc


def content_hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def dump(doc: dict[str, Any]) -> str:
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS).decode()


_FIELD_ORDER = ("id", "source", "type", "date", "location", "from", "to", "ref", "ref_source",
                "reason", "order", "amount", "extra_cost", "allocate", "refs")


def first_difference(old: dict[str, Any], new: dict[str, Any]) -> str:
    """The first field (SPEC order, then line by line) whose value differs."""
    def show(value: Any) -> str:
        return "(absent)" if value is None else str(value)

    for name in _FIELD_ORDER:
        if old.get(name) != new.get(name):
            return f"{name}: {show(old.get(name))} -> {show(new.get(name))}"
    old_lines, new_lines = old.get("lines", []), new.get("lines", [])
    for n, (a, b) in enumerate(zip(old_lines, new_lines)):
        for name in _LINE_FIELDS:
            if a.get(name) != b.get(name):
                return f"lines[{n}].{name}: {show(a.get(name))} -> {show(b.get(name))}"
    if len(old_lines) != len(new_lines):
        return f"lines: {len(old_lines)} -> {len(new_lines)} lines"
    for name in sorted(set(old) | set(new)):
        if old.get(name) != new.get(name):
            return f"{name}: {show(old.get(name))} -> {show(new.get(name))}"
    return "(no difference)"


_new = tuple.__new__  # a named tuple from all its fields, without the keyword-handling __new__


class Parsed(NamedTuple):
    """One input line after the edge: a request, or why it is not one. (A named
    tuple rather than a frozen dataclass: the posting thread builds one per event,
    and a frozen dataclass sets each field through ``object.__setattr__``.)"""

    source: str
    ext_id: str
    request: "EventRequest | CanonicalRequest | None"
    doc: dict[str, Any] | None  # canonical form (None when unparseable or not kept)
    payload: str  # what is stored: canonical JSON, or the raw text
    content_hash: str
    error: str | None = None
    seq: int | None = None
    prepared: Any = None  # domain.resolve.Prepared, when a parser process prepared it
    prepare_error: tuple | None = None  # (setup version, code, message) from that process

    @property
    def valid(self) -> bool:
        return self.request is not None or self.prepared is not None \
            or self.prepare_error is not None

    def get_request(self) -> "EventRequest | CanonicalRequest":
        """The request (read back from the canonical payload when only the
        prepared form travelled from the parser process)."""
        if self.request is not None:
            return self.request
        return load_stored(self.payload)


def describe_validation(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "__root__")
        message = err.get("msg", "invalid")
        if err.get("type") == "missing":
            message = "is required"
        elif err.get("type") == "extra_forbidden":
            message = "is not a field of an event"
        elif err.get("type") == "string_pattern_mismatch":
            message = "must not contain NUL characters"
        if message.startswith("Value error, "):
            message = message[len("Value error, "):]
        parts.append(f"{where} {message}".strip() if where else message)
    more = len(exc.errors()) - 3
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def parse_event(raw: str | bytes | dict[str, Any], where: str = "") -> Parsed:
    """Parse one event (a JSON line, or an already-decoded object)."""
    if not isinstance(raw, dict):
        if len(raw) > limits.EVENT_BYTES_MAX:
            text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
            return _unparsed(text.strip()[:1000], f"{where}event is larger than "
                             f"{limits.EVENT_BYTES_MAX} bytes")
        try:  # the fast path: valid JSON, valid event
            req = EventRequest.model_validate_json(raw)
        except ValidationError:
            pass
        else:
            doc = canonical(req)
            payload = dump(doc)
            return Parsed(req.source, req.id, req, doc, payload,
                          content_hash(payload.encode()), None, req.seq)
    if isinstance(raw, dict):
        obj: Any = raw
        raw_text = orjson.dumps(raw, default=str).decode()
    else:
        raw_text = (raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw).strip()
        try:
            obj = orjson.loads(raw_text)
        except orjson.JSONDecodeError as exc:
            return _unparsed(raw_text, f"{where}not valid JSON ({exc.args[0].split(':')[0]})")
    if not isinstance(obj, dict):
        return _unparsed(raw_text, f"{where}an event must be a JSON object, got {type(obj).__name__}")
    ext_id = obj.get("id")
    source = obj.get("source", "default")
    if not isinstance(source, str) or not source:
        source = "default"
    if "\x00" in source or len(source) > limits.ID_LENGTH_MAX:
        source = "default"
    if isinstance(ext_id, int) and not isinstance(ext_id, bool):
        ext_id = str(ext_id)
        obj = {**obj, "id": ext_id}
    if not isinstance(ext_id, str) or not ext_id:
        return _unparsed(raw_text, f"{where}the event has no id", source)
    if "\x00" in ext_id:
        return _unparsed(raw_text, f"{where}the id contains a NUL character", source)
    sent_source = obj.get("source")
    if len(ext_id) > limits.ID_LENGTH_MAX or (
            isinstance(sent_source, str) and len(sent_source) > limits.ID_LENGTH_MAX):
        return _unparsed(raw_text, f"{where}the id or source is longer than "
                         f"{limits.ID_LENGTH_MAX} characters", source)
    try:
        req = EventRequest.model_validate_json(orjson.dumps(obj, default=str))
    except ValidationError as exc:
        digest = content_hash(raw_text.encode("utf-8", "surrogatepass"))
        return Parsed(source, ext_id[: limits.ID_LENGTH_MAX], None, None, storable(raw_text),
                      digest, f"{where}{describe_validation(exc)}")
    doc = canonical(req)
    payload = dump(doc)
    return Parsed(req.source, req.id, req, doc, payload, content_hash(payload.encode()),
                  None, req.seq)


def _unparsed(raw_text: str, error: str, source: str = "default") -> Parsed:
    digest = content_hash(raw_text.encode("utf-8", "surrogatepass"))
    return Parsed(source, f"unparsed-{digest[:16]}", None, None, storable(raw_text), digest,
                  storable(error))


class CanonicalLine:
    """One line of a canonical payload (already validated when it was accepted)."""

    __slots__ = _LINE_FIELDS

    def __init__(self, sku: str | None, qty: str | None, uom: str | None, unit_cost: str | None,
                 unit_price: str | None, lot: str | None) -> None:
        self.sku = sku
        self.qty = Decimal(qty) if qty is not None else None
        self.uom = uom
        self.unit_cost = Decimal(unit_cost) if unit_cost is not None else None
        self.unit_price = Decimal(unit_price) if unit_price is not None else None
        self.lot = lot


def _line_fields(doc: dict[str, Any]) -> tuple:
    get = doc.get
    return (get("sku"), get("qty"), get("uom"), get("unit_cost"), get("unit_price"), get("lot"))


class CanonicalRequest:
    """A request read back from its canonical form without re-validating it.

    The canonical form is produced only from a validated ``EventRequest``, so
    this is the same request; it is much cheaper than pydantic when replays and
    references read thousands of stored events, or when a helper process has
    already validated the input.
    """

    __slots__ = ("id", "source", "seq", "type", "date_ymd", "location", "from_", "to", "lines",
                 "ref", "ref_source", "reason", "order", "amount", "refs", "allocate",
                 "extra_cost", "sku", "qty", "uom", "unit_cost", "unit_price", "lot")

    def __init__(self, source: str, ext_id: str, seq: int | None, fields: tuple) -> None:
        """`fields` is ``digest(doc)``: the canonical form flattened to a tuple."""
        self.id = ext_id
        self.source = source
        self.seq = seq
        (self.type, self.date_ymd, self.location, self.from_, self.to, self.ref,
         self.ref_source, self.reason, self.order, amount, self.refs, self.allocate, extra,
         lines, stray) = fields
        self.amount = Decimal(amount) if amount is not None else None
        self.extra_cost = Decimal(extra) if extra is not None else None
        self.lines = [CanonicalLine(*line) for line in lines] if lines is not None else None
        if stray is None:
            self.sku = self.qty = self.uom = self.unit_cost = self.unit_price = self.lot = None
        else:  # one-line fields beside `lines`: an invalid event, kept as sent
            line = CanonicalLine(*stray)
            self.sku, self.qty, self.uom = line.sku, line.qty, line.uom
            self.unit_cost, self.unit_price, self.lot = line.unit_cost, line.unit_price, line.lot

    @property
    def date(self) -> dt.date | None:
        value = self.date_ymd
        return None if value is None else dt.date(value // 10000, value // 100 % 100, value % 100)

    def line_inputs(self) -> Any:
        if self.lines is not None:
            if any(getattr(self, f) is not None for f in _LINE_FIELDS):
                raise ValueError("give either lines or the one-line fields (sku, qty, ...), "
                                 "not both")
            return self.lines
        if any(getattr(self, f) is not None for f in _LINE_FIELDS):
            return (self,)
        return ()


def digest(doc: dict[str, Any]) -> tuple:
    """The canonical form as a flat tuple (what ``CanonicalRequest`` is built from)."""
    get = doc.get
    date = get("date")
    date_ymd = int(date[:4]) * 10000 + int(date[5:7]) * 100 + int(date[8:10]) if date else None
    lines = get("lines")
    stray = _line_fields(doc) if any(name in doc for name in _LINE_FIELDS) else None
    return (doc["type"], date_ymd, get("location"), get("from"), get("to"), get("ref"),
            get("ref_source"), get("reason"), get("order"), get("amount"), get("refs"),
            get("allocate"), get("extra_cost"),
            tuple(_line_fields(line) for line in lines) if lines is not None else None, stray)


def load_stored(payload: str) -> CanonicalRequest:
    """A stored canonical payload back into a request (for replays and references)."""
    doc = orjson.loads(payload)
    return CanonicalRequest(doc["source"], doc["id"], None, digest(doc))


def parse_chunk(first: int, name: str, lines: list[bytes],
                prepare: Callable[[Any], tuple] | None = None) -> list[tuple]:
    """Parse a chunk of JSON lines (in the parser process): plain tuples back.

    With `prepare`, each valid request is also prepared (the reference-free
    half of resolution) and travels in that form instead."""
    out = []
    for number, line in enumerate(lines, first):
        if not line.strip():
            continue
        parsed = parse_event(line, f"{name}line {number}: ")
        if parsed.request is None:
            out.append((parsed.source, parsed.ext_id, parsed.payload, parsed.content_hash,
                        parsed.error, parsed.seq, None, None))
        elif prepare is not None:
            out.append((parsed.source, parsed.ext_id, parsed.payload, parsed.content_hash,
                        None, parsed.seq, None, prepare(parsed.request)))
        else:
            out.append((parsed.source, parsed.ext_id, parsed.payload, parsed.content_hash,
                        None, parsed.seq, digest(parsed.doc), None))  # type: ignore[arg-type]
    return out


def parsed_from_tuple(item: tuple, make_prepared: Callable[[tuple], Any] | None = None) -> Parsed:
    source, ext_id, payload, content, error, seq, fields, prepared = item
    if prepared is not None:  # positional, all fields (the hot path: one per event)
        if prepared[0] == "!":
            return _new(Parsed, (source, ext_id, None, None, payload, content, None, seq, None,
                                 prepared[1:]))
        return _new(Parsed, (source, ext_id, None, None, payload, content, None, seq,
                             make_prepared(prepared) if make_prepared else prepared, None))
    if fields is None:
        return Parsed(source, ext_id, None, None, payload, content, error, seq)
    return Parsed(source, ext_id, CanonicalRequest(source, ext_id, seq, fields), None, payload,
                  content, None, seq)


# ---------------------------------------------------------------------------
# The setup file (SPEC 2): structure and types here; references in the domain.
# ---------------------------------------------------------------------------

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EntityDoc(_Strict):
    code: Text
    currency: str


class AccountDoc(_Strict):
    code: Text
    name: str = ""
    type: str


class MappingDoc(_Strict):
    role: str
    account: Text
    entity: Text | None = None
    location: Text | None = None
    category: Text | None = None
    reason: Text | None = None


class CategoryDoc(_Strict):
    code: Text
    valuation: str
    cogs_on: str = "shipment"


class UomDoc(_Strict):
    code: Text
    base: Text | None = None
    factor: Number | None = None


class ComponentDoc(_Strict):
    sku: Text
    qty: Number


class ProductDoc(_Strict):
    sku: Text
    category: Text
    uom: Text
    aliases: list[Text] = []
    standard_cost: Number | None = None
    kind: str = "item"
    components: list[ComponentDoc] = []


class LocationDoc(_Strict):
    code: Text
    entity: Text


class PoliciesDoc(_Strict):
    negative_stock: str = "reject"


class SetupDoc(_Strict):
    entities: list[EntityDoc]
    accounts: list[AccountDoc] = []
    roles: dict[str, Text] = {}
    mapping: list[MappingDoc] = []
    categories: list[CategoryDoc] = []
    uoms: list[UomDoc] = []
    products: list[ProductDoc] = []
    locations: list[LocationDoc] = []
    policies: PoliciesDoc = PoliciesDoc()


def setup_problems_from_validation(exc: ValidationError) -> list[str]:
    problems = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()))
        message = "is required" if err.get("type") == "missing" else err.get("msg", "invalid")
        if err.get("type") == "extra_forbidden":
            message = "is not a known field"
        problems.append(f"{where}: {message}")
    return problems


def setup_document(data: Any) -> dict[str, Any]:
    """Validate a decoded setup file's structure; returns plain data (JSON-ready).

    Raises ``ValidationError`` with every structural problem.
    """
    doc = SetupDoc.model_validate(data)
    return orjson.loads(orjson.dumps(doc.model_dump(mode="json", exclude_none=True)))
