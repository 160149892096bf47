"""The Python `ocpp` library's charge point, driven by examples/tests/interop.rs.

    python charge_point.py --url ws://127.0.0.1:9000/ocpp/PY-16 --version 1.6 \
        [--coverage target/interop/coverage/x.jsonl]

Connects with the version's subprotocol and runs `ChargePoint.start()`; what it sends and how
it answers the central system come from the test over stdin (see bridge.py).
"""

import argparse
import asyncio

import websockets

from bridge import SUBPROTOCOLS, Bridge, Wire, charge_point_class, emit, main


async def run(args):
    bridge = Bridge("charge_point", args.version, args.coverage)
    identity = args.url.rstrip("/").rsplit("/", 1)[-1]
    ws = await websockets.connect(
        args.url, subprotocols=[SUBPROTOCOLS[args.version]], open_timeout=10
    )
    if ws.subprotocol != SUBPROTOCOLS[args.version]:
        emit({"event": "fatal", "error": f"server chose subprotocol {ws.subprotocol!r}"})
        await ws.close()
        return
    cp = charge_point_class(args.version)(identity, Wire(ws, bridge), response_timeout=15)
    bridge.attach(cp)
    emit({"event": "connected", "identity": identity, "protocol": ws.subprotocol})

    async def serve():
        try:
            await cp.start()
        except websockets.ConnectionClosed as e:
            emit({"event": "closed", "reason": str(e)})

    server = asyncio.ensure_future(serve())

    async def quit_():
        await ws.close()
        await asyncio.wait([server], timeout=5)

    await bridge.commands(quit_)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--url", required=True)
    p.add_argument("--version", required=True, choices=sorted(SUBPROTOCOLS))
    p.add_argument("--coverage")
    a = p.parse_args()
    main(lambda: run(a))
