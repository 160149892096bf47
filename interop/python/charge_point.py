"""The Python `ocpp` library's charge point, driven by examples/tests/interop.rs.

    python charge_point.py --url ws://127.0.0.1:9000/ocpp/PY-16 --version 1.6 \
        [--coverage target/interop/coverage/x.jsonl] \
        [--ca ca.pem [--client-cert cp.pem --client-key cp.key]]

Connects with the version's subprotocol and runs `ChargePoint.start()`; what it sends and how
it answers the central system come from the test over stdin (see bridge.py). With --ca the URL
is wss:// and the server's certificate must chain to that CA (Python's `ssl` module, TLS 1.2
or newer); --client-cert/--client-key present a client certificate (security profile 3).
"""

import argparse
import asyncio
import ssl

import websockets

from bridge import SUBPROTOCOLS, Bridge, Wire, charge_point_class, emit, main


async def run(args):
    bridge = Bridge("charge_point", args.version, args.coverage)
    identity = args.url.rstrip("/").rsplit("/", 1)[-1]
    tls = None
    if args.ca:
        tls = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=args.ca)
        tls.minimum_version = ssl.TLSVersion.TLSv1_2
        if args.client_cert:
            tls.load_cert_chain(args.client_cert, args.client_key)
    ws = await websockets.connect(
        args.url, subprotocols=[SUBPROTOCOLS[args.version]], open_timeout=10, ssl=tls
    )
    if ws.subprotocol != SUBPROTOCOLS[args.version]:
        emit({"event": "fatal", "error": f"server chose subprotocol {ws.subprotocol!r}"})
        await ws.close()
        return
    cp = charge_point_class(args.version)(identity, Wire(ws, bridge), response_timeout=15)
    bridge.attach(cp)
    # websockets offers permessage-deflate by default; what the server answered.
    extensions = ws.response.headers.get("Sec-WebSocket-Extensions") or ""
    emit({"event": "connected", "identity": identity, "protocol": ws.subprotocol,
          "extensions": extensions})

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
    p.add_argument("--ca", help="CA certificate (PEM) of a wss:// central system")
    p.add_argument("--client-cert", help="client certificate (PEM), security profile 3")
    p.add_argument("--client-key", help="the client certificate's private key (PEM)")
    a = p.parse_args()
    main(lambda: run(a))
