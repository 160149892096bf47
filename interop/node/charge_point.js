'use strict';
// ocpp-rpc's RPCClient as a charge point in strict mode, driven by examples/tests/interop.rs:
//   node charge_point.js --url ws://127.0.0.1:9000/ocpp/RPC-16 --version 1.6 [--coverage FILE]
// (the identity is the last path segment of --url; see bridge.js for the line protocol).

const { RPCClient } = require('ocpp-rpc');
const { Bridge, SUBPROTOCOLS, emit, main, parseArgs, strictValidators } = require('./bridge');

main(async () => {
    const args = parseArgs(process.argv.slice(2), ['url', 'version', 'coverage']);
    const protocol = SUBPROTOCOLS[args.version];
    if (!args.url || !protocol) throw Error('--url and --version 1.6|2.0.1|2.1 are required');
    const url = args.url.replace(/\/+$/, '');
    const cut = url.lastIndexOf('/');
    const bridge = new Bridge('charge_point', args.version, args.coverage);
    const client = new RPCClient({
        endpoint: url.slice(0, cut),
        identity: url.slice(cut + 1),
        protocols: [protocol],
        strictMode: true,
        strictModeValidators: strictValidators(args.version),
        reconnect: false,
        callTimeoutMs: 15000,
    });
    bridge.attach(client);
    client.on('close', ({ code, reason }) => emit({ event: 'closed', reason: `${code} ${reason}` }));
    await client.connect();
    if (client.protocol !== protocol) throw Error(`server chose subprotocol ${client.protocol}`);
    // ws offers permessage-deflate by default (perMessageDeflate); what was negotiated.
    emit({ event: 'connected', identity: client.identity, protocol: client.protocol,
           extensions: client._ws ? client._ws.extensions : '' });
    bridge.commands(async () => {
        await client.close({ code: 1000, awaitPending: false });
        process.exit(0);
    });
});
