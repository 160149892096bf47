"""The Python `ocpp` library's central system, driven by examples/tests/interop.rs.

    python central_system.py --version 2.0.1 [--port 0] [--coverage FILE]

A `websockets` server on 127.0.0.1 offering only the version's subprotocol; every charger
that connects (identity = last path segment) gets an `ocpp` ChargePoint object; calls from
the test go to the latest connection. Prints {"event": "listening", "port": P} first.
"""

import argparse
import asyncio

import websockets

from bridge import SUBPROTOCOLS, Bridge, Wire, charge_point_class, emit, main


async def run(args):
    bridge = Bridge("central_system", args.version, args.coverage)
    protocol = SUBPROTOCOLS[args.version]

    async def on_connect(ws):
        if ws.subprotocol != protocol:
            emit({"event": "refused", "reason": f"subprotocol {ws.subprotocol!r}"})
            await ws.close()
            return
        identity = ws.request.path.rstrip("/").rsplit("/", 1)[-1]
        cp = charge_point_class(args.version)(identity, Wire(ws, bridge), response_timeout=15)
        bridge.attach(cp)
        emit({"event": "connected", "identity": identity, "protocol": ws.subprotocol})
        try:
            await cp.start()
        except websockets.ConnectionClosed as e:
            emit({"event": "closed", "reason": str(e)})
        finally:
            if bridge.cp is cp:
                bridge.cp = None

    server = await websockets.serve(on_connect, "127.0.0.1", args.port, subprotocols=[protocol])
    port = next(iter(server.sockets)).getsockname()[1]
    emit({"event": "listening", "port": port})

    async def quit_():
        server.close()
        await asyncio.wait([asyncio.ensure_future(server.wait_closed())], timeout=5)

    await bridge.commands(quit_)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--version", required=True, choices=sorted(SUBPROTOCOLS))
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--coverage")
    a = p.parse_args()
    main(lambda: run(a))
