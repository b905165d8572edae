'use strict';
// Closed-loop load for bench/read.py: autocannon keeps `connections` requests in flight (each
// connection sends its next request when the previous answer has arrived) for `seconds`, then
// this prints one JSON object with every answer as [ms since the start, latency ms, good].
//
// Argument: a JSON object {url, headers, body, connections, seconds, minBytes, vary, offset,
// phrase}. With `vary`, every request gets its own body: `"__FIRST__"` becomes 41–50 and
// `__NEEDLE__` a case variant of `phrase` (which every file name contains), numbered from
// `offset`, so no two requests of a run, or of runs with disjoint offsets, are the same.

const autocannon = require('autocannon');

const config = JSON.parse(process.argv[2]);
let counter = config.offset || 0;

function needle(n) {
  let bits = n;
  let out = '';
  for (const ch of config.phrase) {
    if (ch >= 'a' && ch <= 'z') {
      out += bits % 2 ? ch.toUpperCase() : ch;
      bits = Math.floor(bits / 2);
    } else {
      out += ch;
    }
  }
  return out;
}

function variedBody() {
  const n = counter;
  counter += 1;
  return config.body
    .replace('"__FIRST__"', String(41 + (n % 10)))
    .replace('__NEEDLE__', needle(Math.floor(n / 10)));
}

const request = { method: 'POST', path: '/graphql', headers: config.headers, body: config.body };
if (config.vary) request.setupRequest = (req) => ({ ...req, body: variedBody() });

const answers = [];
const started = process.hrtime.bigint();
const sinceStart = () => Number(process.hrtime.bigint() - started) / 1e6;
const round = (value, digits) => Math.round(value * 10 ** digits) / 10 ** digits;

const instance = autocannon(
  {
    url: config.url,
    connections: config.connections,
    pipelining: 1,
    duration: config.seconds,
    timeout: 60,
    requests: [request],
  },
  (error, result) => {
    if (error) throw error;
    const summary = { seconds: sinceStart() / 1000, errors: result.errors, next: counter, answers };
    process.stdout.write(`${JSON.stringify(summary)}\n`);
  },
);

// A short answer is an error (GraphQL errors, BUSY, 4xx/5xx): a real page is far larger.
instance.on('response', (client, status, bytes, ms) => {
  const good = status === 200 && bytes >= config.minBytes ? 1 : 0;
  answers.push([round(sinceStart(), 1), round(ms, 3), good]);
});
