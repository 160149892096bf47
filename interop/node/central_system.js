'use strict';
// ocpp-rpc's RPCServer as a central system in strict mode, driven by examples/tests/interop.rs:
//   node central_system.js --version 2.0.1 [--port 0] [--coverage FILE]
// Listens on 127.0.0.1, offers only the version's subprotocol, accepts any identity; calls
// from the test go to the latest connection. Prints {"event":"listening","port":P} first.

const { RPCServer } = require('ocpp-rpc');
const { Bridge, SUBPROTOCOLS, emit, main, parseArgs, strictValidators } = require('./bridge');

main(async () => {
    const args = parseArgs(process.argv.slice(2), ['version', 'port', 'coverage']);
    const protocol = SUBPROTOCOLS[args.version];
    if (!protocol) throw Error('--version 1.6|2.0.1|2.1 is required');
    const bridge = new Bridge('central_system', args.version, args.coverage);
    const server = new RPCServer({
        protocols: [protocol],
        strictMode: true,
        strictModeValidators: strictValidators(args.version),
        callTimeoutMs: 15000,
    });
    server.auth((accept) => accept());
    server.on('client', (client) => {
        bridge.attach(client);
        emit({ event: 'connected', identity: client.identity, protocol: client.protocol });
        client.on('close', ({ code, reason }) => {
            emit({ event: 'closed', reason: `${code} ${reason}` });
            if (bridge.client === client) bridge.client = null;
        });
    });
    const http = await server.listen(Number(args.port || 0), '127.0.0.1');
    emit({ event: 'listening', port: http.address().port });
    bridge.commands(async () => {
        await server.close({ code: 1000, force: true });
        process.exit(0);
    });
});
