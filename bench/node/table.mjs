#!/usr/bin/env node
// Side-by-side table of two sets of fanout.mjs results (scripts/independent.sh writes them):
//   node bench/node/table.mjs --ours DIR --baseline DIR [--runs cold,run2,run3,saturate]
// Reads DIR/RUN.json on each side; a side or a run that is missing shows as "—". bb-warm.json is
// broker-bench's own fanout result (scripts/independent.sh's cross-check), read in its own format.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const oursDir = opt('--ours', null);
const baseDir = opt('--baseline', null);
const runs = opt('--runs', 'cold,run2,run3,saturate,bb-warm').split(',');
const runLabel = (run) => (run === 'bb-warm' ? 'run3 again, broker-bench' : run);
if (!oursDir && !baseDir) {
  console.error('usage: node table.mjs --ours DIR --baseline DIR [--runs cold,run2,run3,saturate,bb-warm]');
  process.exit(2);
}

const load = (dir, run) => {
  if (!dir) return null;
  const f = path.join(dir, `${run}.json`);
  if (!existsSync(f)) return null;
  const r = JSON.parse(readFileSync(f, 'utf8'));
  return r.workload === 'fanout' ? fromBrokerBench(r) : r;
};

// broker-bench's fanout result (bench/, --json-out) in this tool's shape, for the cross-check rows
function fromBrokerBench(b) {
  const l = b.latency ?? {};
  return {
    deliveriesPerServerCpuSecond: b.deliveriesPerServerCpuSecond,
    serverCpuMicrosPerDelivery: b.serverCpuMicrosPerDelivery,
    deliveredPerSecond: b.deliveredPerSecond,
    latency: { p50: l.p50Ms, p99: l.p99Ms, p999: l.p999Ms, max: l.maxMs },
    perSecond: [],
    missingDeliveries: b.missingDeliveries,
    duplicates: b.duplicates,
    outOfOrder: b.outOfOrder,
    errors: b.errors,
    closes: b.closes,
    connections: b.connections,
    joined: b.connections,
    cpu: { serverCores: b.cpu?.serverCores, toolCores: b.cpu?.toolCores, otherCores: null },
    problems: b.cpu?.toolIsBottleneck ? ['broker-bench: the tool used more than 0.8 cores'] : [],
  };
}

const fmt = (x, digits) => {
  if (x === null || x === undefined || Number.isNaN(x)) return '—';
  if (typeof x !== 'number') return String(x);
  const d = digits ?? (Math.abs(x) >= 100 ? 0 : Math.abs(x) >= 10 ? 1 : 2);
  return x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
};
const count = (m) => Object.values(m ?? {}).reduce((a, b) => a + b, 0);
const measured = (r) => (r?.perSecond ?? []).filter((s) => s.phase === 'measure');

// [label, getter, better, digits]
const figures = [
  ['deliveries per server CPU-second', (r) => r.deliveriesPerServerCpuSecond, 'higher', 0],
  ['server CPU µs per delivery', (r) => r.serverCpuMicrosPerDelivery, 'lower', 2],
  ['server cores', (r) => r.cpu?.serverCores, 'lower', 2],
  ['delivered/s', (r) => r.deliveredPerSecond, 'same', 0],
  ['latency p50 ms', (r) => r.latency.p50, 'lower'],
  ['latency p99 ms', (r) => r.latency.p99, 'lower'],
  ['latency p99.9 ms', (r) => r.latency.p999, 'lower'],
  ['latency max ms', (r) => r.latency.max, 'lower'],
  ['worst second\'s p99 ms', (r) => (measured(r).length ? Math.max(...measured(r).map((s) => s.p99 ?? 0)) : null), 'lower'],
  ['missing / dup / out-of-order', (r) => `${r.missingDeliveries} / ${r.duplicates} / ${r.outOfOrder}`, '0'],
  ['errors + closes + failed joins', (r) => count(r.errors) + count(r.closes) + (r.connections - r.joined), '0', 0],
  ['tool cores', (r) => r.cpu?.toolCores, 'lower', 2],
  ['other processes, cores', (r) => r.cpu?.otherCores, '~0', 2],
];

let out = '| run | figure | ours | peer | ours/peer | better |\n|---|---|---:|---:|---:|---|\n';
for (const run of runs) {
  const a = load(oursDir, run);
  const b = load(baseDir, run);
  if (!a && !b) continue;
  for (const [label, get, better, digits] of figures) {
    const x = a ? get(a) : null;
    const y = b ? get(b) : null;
    const ratio = typeof x === 'number' && typeof y === 'number' && y !== 0 && better !== '0' && better !== '~0' ? fmt(x / y, 2) : '—';
    out += `| ${runLabel(run)} | ${label} | ${fmt(x, digits)} | ${fmt(y, digits)} | ${ratio} | ${better} |\n`;
  }
}
process.stdout.write(out);

const notes = [];
for (const run of runs) {
  for (const [side, dir] of [['ours', oursDir], ['peer', baseDir]]) {
    const r = load(dir, run);
    if (r && r.problems?.length) notes.push(`${side} ${run}: ${r.problems.join('; ')}`);
  }
}
if (notes.length) process.stdout.write(`\n${notes.map((n) => `- ${n}`).join('\n')}\n`);
