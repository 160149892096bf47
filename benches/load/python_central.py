"""The Python `ocpp` package's central system for the load benchmark: BootNotification,
Heartbeat, MeterValues and StatusNotification for OCPP 1.6 and 2.0.1, and the transactions of
`charger-sim --load --load-mode tx|tx-open` (1.6 StartTransaction answered with a new
transactionId, StopTransaction; 2.0.1 TransactionEvent), on a `websockets` server, as its
documentation shows. Usage: python_central.py PORT"""
import asyncio
import itertools
import logging
import sys
from datetime import datetime, timezone

import websockets
from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v16.enums import RegistrationStatus as Registration16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action as Action201
from ocpp.v201.enums import RegistrationStatusEnumType as Registration201

logging.getLogger("ocpp").setLevel(logging.WARNING)

# 1.6 transaction ids are the central system's: it gives them in StartTransaction.conf (OCPP 1.6).
transaction_ids = itertools.count(1)


def now() -> str:
    return datetime.now(timezone.utc).isoformat()


class Central16(ChargePoint16):
    @on(Action16.boot_notification)
    def boot(self, **_):
        return result16.BootNotification(current_time=now(), interval=300, status=Registration16.accepted)

    @on(Action16.heartbeat)
    def heartbeat(self):
        return result16.Heartbeat(current_time=now())

    @on(Action16.meter_values)
    def meter_values(self, **_):
        return result16.MeterValues()

    @on(Action16.status_notification)
    def status(self, **_):
        return result16.StatusNotification()

    @on(Action16.start_transaction)
    def start_transaction(self, **_):
        return result16.StartTransaction(transaction_id=next(transaction_ids),
                                         id_tag_info={"status": "Accepted"})

    @on(Action16.stop_transaction)
    def stop_transaction(self, **_):
        return result16.StopTransaction()


class Central201(ChargePoint201):
    @on(Action201.boot_notification)
    def boot(self, **_):
        return result201.BootNotification(current_time=now(), interval=300, status=Registration201.accepted)

    @on(Action201.heartbeat)
    def heartbeat(self):
        return result201.Heartbeat(current_time=now())

    @on(Action201.meter_values)
    def meter_values(self, **_):
        return result201.MeterValues()

    @on(Action201.status_notification)
    def status(self, **_):
        return result201.StatusNotification()

    @on(Action201.transaction_event)
    def transaction_event(self, **_):
        return result201.TransactionEvent()


async def serve(connection):
    identity = connection.request.path.rstrip("/").rsplit("/", 1)[-1]
    cls = Central16 if connection.subprotocol == "ocpp1.6" else Central201
    try:
        await cls(identity, connection).start()
    except websockets.exceptions.ConnectionClosed:
        pass


async def main(port: int):
    async with websockets.serve(serve, "127.0.0.1", port, subprotocols=["ocpp1.6", "ocpp2.0.1"],
                                ping_interval=None, max_size=1 << 20, backlog=4096):
        print("listening", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
