'use strict';
// PostGraphile 4.14 in library mode over the bench's database, for bench/read.py.
//
// Every request is authenticated with the same HS256 bearer tokens as our server, and runs in
// a transaction as `training_files_user` with `app.user_id` set (pgSettings), so the same
// row-level policies apply. Configured by the environment:
//   PGHOST (the embedded server's socket directory), PGPORT, PGDATABASE, PGUSER,
//   JWT_SECRET, HOST, PORT, POOL_SIZE, WORKERS (processes sharing the port, default 1).

const cluster = require('node:cluster');
const http = require('node:http');
const jwt = require('jsonwebtoken');
const { Pool } = require('pg');
const { postgraphile } = require('postgraphile');
const ConnectionFilterPlugin = require('postgraphile-plugin-connection-filter');

const ROLE = 'training_files_user';
const env = process.env;

function callerSettings(req) {
  const match = /^Bearer (.+)$/.exec(req.headers.authorization || '');
  if (!match) throw Object.assign(new Error('a bearer token is required'), { status: 401 });
  const claims = jwt.verify(match[1], env.JWT_SECRET, { algorithms: ['HS256'] });
  return { role: ROLE, 'app.user_id': String(claims.sub) };
}

function serve() {
  // The same size as our server's request pool; connections never idle out, so the bench can
  // follow each backend's CPU for a whole round.
  const pool = new Pool({ max: Number(env.POOL_SIZE || 10), idleTimeoutMillis: 0 });
  const middleware = postgraphile(pool, 'public', {
    appendPlugins: [ConnectionFilterPlugin],
    pgSettings: async (req) => callerSettings(req),
    dynamicJson: true,
    disableQueryLog: true,
    watchPg: false,
    graphiql: false,
    enableCors: false,
  });
  http.createServer(middleware).listen(Number(env.PORT), env.HOST || '127.0.0.1');
}

const workers = Number(env.WORKERS || 1);
if (workers > 1 && cluster.isPrimary) {
  for (let i = 0; i < workers; i += 1) cluster.fork();
  process.on('SIGTERM', () => {
    for (const worker of Object.values(cluster.workers)) worker.kill('SIGTERM');
    process.exit(0);
  });
} else {
  serve();
}
