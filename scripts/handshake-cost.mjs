// What identity costs a handshake: N sequential connect + welcome + close per kind (?user= guest,
// HS256 token, RS256 token from a PEM public key), twice (the second round is warm), with the
// front-end's CPU read from /proc. Usage (after dotnet build -c Release and npm ci in tests/clients):
//   node scripts/handshake-cost.mjs src/WsFrontend/bin/Release/net10.0/Broker.WsFrontend.dll [N]
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import { createRequire } from 'node:module';
const WebSocket = createRequire(new URL('../tests/clients/package.json', import.meta.url))('ws');
const dll = process.argv[2]; const N = +(process.argv[3] ?? 2000);
const hkey = 'a-signing-key-of-at-least-32-bytes!!';
const { publicKey, privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const pem = publicKey.export({ type: 'spki', format: 'pem' });
fs.writeFileSync(`${os.tmpdir()}/broker-handshake-rsa.pem`, pem);
const b64 = (o) => Buffer.from(typeof o === 'string' ? o : JSON.stringify(o)).toString('base64url');
function jwt(alg, sub) {
  const h = b64({ alg, typ: 'JWT' }), p = b64({ sub, exp: Math.floor(Date.now() / 1000) + 3600 });
  const data = `${h}.${p}`;
  const sig = alg === 'HS256' ? crypto.createHmac('sha256', hkey).update(data).digest('base64url')
    : crypto.sign('sha256', Buffer.from(data), privateKey).toString('base64url');
  return `${data}.${sig}`;
}
const port = 20000 + Math.floor(Math.random() * 5000);
const child = spawn('dotnet', [dll, '--urls', `http://127.0.0.1:${port}`, `--Broker:Jwt:SigningKey=${hkey}`, `--Broker:Jwt:PublicKeys:0=${os.tmpdir()}/broker-handshake-rsa.pem`, `--Broker:Embedded:SiloPort=${port + 1}`, '--Broker:Namespaces:open:Anonymous=true', '--Broker:MaxConnectionsPerIp=0'], { stdio: 'ignore' });
const cpu = () => { const f = fs.readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1].split(' '); return (+f[11] + +f[12]) * 10; };
for (let i = 0; i < 200; i++) { try { const r = await fetch(`http://127.0.0.1:${port}/healthz`); if (r.ok) break; } catch {} await new Promise(r => setTimeout(r, 100)); }
const once = (path) => new Promise((res, rej) => { const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`); ws.once('message', () => { ws.close(); ws.once('close', res); }); ws.once('error', rej); });
async function run(label, mk) {
  for (let i = 0; i < 300; i++) await once(mk(i)); // warm
  const c0 = cpu(), t0 = performance.now();
  for (let i = 0; i < N; i++) await once(mk(i));
  const c1 = cpu(), t1 = performance.now();
  console.log(`${label.padEnd(24)} ${((c1 - c0) * 1000 / N).toFixed(0).padStart(5)} us server CPU per connect+close, ${(N / ((t1 - t0) / 1000)).toFixed(0)} /s sequential`);
}
try {
  for (const r of [1,2]) { await run('guest (?user=) #'+r, i => `/open?user=u${i}`); await run('HS256 token #'+r, i => `/chat?token=${jwt('HS256', 'u' + i)}`); await run('RS256 token #'+r, i => `/chat?token=${jwt('RS256', 'u' + i)}`); }
} finally { child.kill('SIGKILL'); }
