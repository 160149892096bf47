"""The line protocol between examples/tests/interop.rs and the Python `ocpp` peers.

The test drives a peer through stdin and reads what happened on stdout, one JSON object per
line each way, so the flows (and their assertions) live in one place, the Rust test, while
every OCPP message is built, validated, sent, received and answered by the `ocpp` library.

Commands (stdin):
  {"cmd": "call", "id": N, "action": A, "payload": {...}}
      send CALL A through `ChargePoint.call` (which validates the request and the response
      against the library's schemas); answered by a "result" event with the same id.
  {"cmd": "answer", "action": A, "payload": {...}}
      from now on answer incoming A with this payload (through an `@on`-style handler that
      returns the library's `call_result` dataclass; the library validates it).
  {"cmd": "quit"}  (or end of input): close the connection and exit.

Events (stdout):
  {"event": "listening", "port": P}                         central system: server is up
  {"event": "connected", "identity": I, "protocol": S}      a WebSocket is open
  {"event": "incoming", "action": A, "payload": {...}}      a CALL arrived (before the answer)
  {"event": "answered", "action": A, "response": {...}}     ... and was answered with this
  {"event": "answered", "action": A, "error": {...}}        ... or with this CALLERROR
  {"event": "result", "id": N, "action": A, "ok": true, "response": {...}}
  {"event": "result", "id": N, "action": A, "ok": false, "error": {"code", "description"}}
  {"event": "closed", "reason": R}                          the WebSocket closed
  {"event": "bad_message", "message": M, "error": E}        a frame it could not process
  {"event": "fatal", "error": E}                            the peer cannot go on

Coverage: every CALL that got an answer over the socket is appended to the --coverage file as
{"peer", "role", "version", "action", "direction", "answer"} (direction "cs_to_csms" or
"csms_to_cs", answer "result" or "error:<code>").
"""

import asyncio
import dataclasses
import importlib
import json
import sys
import traceback

from ocpp.charge_point import camel_to_snake_case, remove_nones, serialize_as_dict
from ocpp.charge_point import snake_to_camel_case
from ocpp.exceptions import OCPPError

MODULES = {"1.6": "ocpp.v16", "2.0.1": "ocpp.v201", "2.1": "ocpp.v21"}
SUBPROTOCOLS = {"1.6": "ocpp1.6", "2.0.1": "ocpp2.0.1", "2.1": "ocpp2.1"}
PEER = "python-ocpp"


def emit(obj):
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def build(cls, payload):
    """The library's dataclass `cls` from a camelCase payload: keys are converted with the
    library's own camel_to_snake_case, and top-level keys are matched to the dataclass
    fields ignoring underscores (the 2.1 dataclasses spell some fields differently from what
    that function makes, e.g. `iso_15118_schema_version`), as a user would write them."""
    fields = {f.name.replace("_", ""): f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in camel_to_snake_case(payload).items():
        kwargs[fields.get(key.replace("_", ""), key)] = value
    return cls(**kwargs)


def charge_point_class(version):
    return importlib.import_module(MODULES[version]).ChargePoint


class Bridge:
    """State shared by the peer's connection(s): answers, pending frames, coverage."""

    def __init__(self, role, version, coverage_path):
        self.role = role  # "charge_point" or "central_system"
        self.version = version
        self.answers = {}  # action -> camelCase payload
        self.cp = None  # the current ocpp ChargePoint
        self.sent = {}  # unique id -> action, CALLs we sent
        self.received = {}  # unique id -> action, CALLs we received
        self.raw_results = {}  # unique id -> raw CALLRESULT payload of our CALLs
        self.raw_errors = {}  # unique id -> error code, our CALLs answered with a CALLERROR
        self.coverage = open(coverage_path, "a", encoding="utf-8") if coverage_path else None

    # -- coverage and events, from the frames on the wire
    def direction(self, outbound):
        ours = "cs_to_csms" if self.role == "charge_point" else "csms_to_cs"
        theirs = "csms_to_cs" if self.role == "charge_point" else "cs_to_csms"
        return ours if outbound else theirs

    def record(self, action, outbound_call, answer):
        if self.coverage is None:
            return
        line = {
            "peer": PEER,
            "role": self.role,
            "version": self.version,
            "action": action,
            "direction": self.direction(outbound_call),
            "answer": answer,
        }
        self.coverage.write(json.dumps(line, separators=(",", ":")) + "\n")
        self.coverage.flush()

    def observe(self, text, outbound):
        try:
            frame = json.loads(text)
            kind, uid = frame[0], frame[1]
        except (ValueError, IndexError, TypeError, KeyError):
            if not outbound:
                emit({"event": "bad_message", "message": str(text)[:2000],
                      "error": "not an OCPP-J frame"})
            return
        if kind == 2:
            action, payload = frame[2], frame[3]
            if outbound:
                self.sent[uid] = action
            else:
                self.received[uid] = action
                emit({"event": "incoming", "action": action, "payload": payload})
        elif kind in (3, 4):
            pending = self.received if outbound else self.sent
            action = pending.pop(uid, None)
            if action is None:
                return
            if kind == 3:
                self.record(action, not outbound, "result")
                if outbound:
                    emit({"event": "answered", "action": action, "response": frame[2]})
                else:
                    self.raw_results[uid] = frame[2]
            else:
                self.record(action, not outbound, "error:" + str(frame[2]))
                if not outbound:
                    self.raw_errors[uid] = frame[2]
                if outbound:
                    err = {"code": frame[2], "description": frame[3]}
                    emit({"event": "answered", "action": action, "error": err})

    # -- handlers: answers set by the test, returned as the library's dataclasses
    def install(self, cp, action):
        def handler(**_kwargs):
            payload = self.answers[action]
            return build(getattr(cp._call_result, action), payload)

        cp.route_map[action] = {"_on_action": handler, "_skip_schema_validation": False}

    def attach(self, cp):
        self.cp = cp
        for action in self.answers:
            self.install(cp, action)

    # -- commands
    async def call(self, cmd):
        action, cid = cmd["action"], cmd.get("id")
        cp = self.cp
        if cp is None:
            emit({"event": "result", "id": cid, "action": action, "ok": False,
                  "error": {"code": "NotConnected", "description": "no connection"}})
            return
        uid = "py-" + str(cid)
        try:
            request = build(getattr(cp._call, action), cmd.get("payload") or {})
            result = await cp.call(request, suppress=False, unique_id=uid)
            raw = self.raw_results.pop(uid, None)
            if raw is None:
                raw = snake_to_camel_case(remove_nones(serialize_as_dict(result)))
            emit({"event": "result", "id": cid, "action": action, "ok": True, "response": raw})
        except Exception as e:  # noqa: BLE001 - reported to the test, which fails on it
            # remote: the other side answered a CALLERROR; otherwise the library refused
            # the request or the answer (schema validation, its dataclasses) or timed out.
            self.raw_results.pop(uid, None)
            remote_code = self.raw_errors.pop(uid, None)
            remote = remote_code is not None
            code = remote_code or (getattr(e, "code", None) if isinstance(e, OCPPError) else None)
            emit({"event": "result", "id": cid, "action": action, "ok": False,
                  "error": {"code": code or type(e).__name__, "remote": remote,
                            "description": f"{type(e).__name__}: {e}"}})

    async def commands(self, on_quit):
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=1 << 24)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        tasks = set()
        while True:
            line = await reader.readline()
            if not line:
                break
            line = line.strip()
            if not line:
                continue
            try:
                cmd = json.loads(line)
            except ValueError:
                emit({"event": "fatal", "error": f"not JSON: {line!r}"})
                continue
            if cmd.get("cmd") == "quit":
                break
            if cmd.get("cmd") == "answer":
                self.answers[cmd["action"]] = cmd.get("payload") or {}
                if self.cp is not None:
                    self.install(self.cp, cmd["action"])
            elif cmd.get("cmd") == "call":
                t = asyncio.ensure_future(self.call(cmd))
                tasks.add(t)
                t.add_done_callback(tasks.discard)
            else:
                emit({"event": "fatal", "error": f"unknown command: {cmd!r}"})
        await on_quit()


class Wire:
    """A websockets connection as the `ocpp` ChargePoint sees it, reporting every frame."""

    def __init__(self, ws, bridge):
        self.ws = ws
        self.bridge = bridge

    async def recv(self):
        text = await self.ws.recv()
        self.bridge.observe(text, outbound=False)
        return text

    async def send(self, text):
        # Observed before sending: the answer may arrive before send() returns.
        self.bridge.observe(text, outbound=True)
        await self.ws.send(text)


def main(run):
    """Runs `run()` and reports an unexpected failure as a fatal event."""
    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
    except Exception as e:  # noqa: BLE001
        emit({"event": "fatal", "error": f"{type(e).__name__}: {e}"})
        traceback.print_exc()
        sys.exit(1)
