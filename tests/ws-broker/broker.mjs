// A third-party MQTT broker for smq's integration tests: aedes (MQTT 3.1.1 only) over
// WebSocket on any path, plus plain TCP so mosquitto_sub can verify what arrives.
// Given `--cert FILE --key FILE` it also serves WebSocket over TLS (wss).
// Every listener binds 127.0.0.1 on port 0. The one stdout line `ws=PORT tcp=PORT [wss=PORT]`
// is the readiness signal; everything else goes to stderr. It exits when stdin closes, so a test
// process that dies without running Drop doesn't leave it behind.
import { readFileSync } from 'node:fs'
import { createServer as createHttpServer } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { createServer as createTcpServer } from 'node:net'
import { once } from 'node:events'
import { Aedes } from 'aedes'
import { WebSocketServer, createWebSocketStream } from 'ws'

const log = (line) => process.stderr.write(`${line}\n`)

const aedes = await Aedes.createBroker()
aedes.on('client', (client) => log(`connected ${client.id}`))
aedes.on('clientDisconnect', (client) => log(`disconnected ${client.id}`))
aedes.on('subscribe', (subs, client) =>
  log(`subscribe ${client.id} ${subs.map((s) => `${s.topic}@${s.qos}`).join(' ')}`))
aedes.on('publish', (packet, client) => {
  if (client) log(`publish ${client.id} ${packet.topic} q${packet.qos} r${packet.retain ? 1 : 0}`)
})

const tcp = createTcpServer(aedes.handle)

// Plain HTTP requests get 426 so a client that forgot the upgrade sees a clear status.
const upgradeOnly = (req, res) => res.writeHead(426).end()
const servers = { ws: createHttpServer(upgradeOnly) }
const arg = (name) => {
  const i = process.argv.indexOf(name)
  return i > 0 ? process.argv[i + 1] : undefined
}
if (arg('--cert')) {
  servers.wss = createHttpsServer({ cert: readFileSync(arg('--cert')), key: readFileSync(arg('--key')) }, upgradeOnly)
}
for (const server of Object.values(servers)) {
  const wss = new WebSocketServer({
    server,
    // Agree to `mqtt` as mosquitto does; a client that offers only other names gets no
    // subprotocol, which a strict client (tungstenite) reports as an error.
    handleProtocols: (offered) => (offered.has('mqtt') ? 'mqtt' : false)
  })
  wss.on('connection', (socket, req) => {
    log(`ws ${req.url} protocol=${socket.protocol || '-'}`)
    aedes.handle(createWebSocketStream(socket), req)
  })
}

tcp.listen(0, '127.0.0.1')
for (const server of Object.values(servers)) server.listen(0, '127.0.0.1')
await Promise.all([tcp, ...Object.values(servers)].map((s) => once(s, 'listening')))
const ports = Object.entries(servers).map(([name, s]) => ` ${name}=${s.address().port}`)
process.stdout.write(`ws=${servers.ws.address().port} tcp=${tcp.address().port}${ports.slice(1).join('')}\n`)

process.stdin.on('end', () => process.exit(0))
process.stdin.resume()
