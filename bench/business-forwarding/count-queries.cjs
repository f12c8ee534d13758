// Preloaded into the benchmarked service (node --require): counts the statements it sends to Postgres,
// by statement shape, so a run can report round trips per message rather than only wall-clock rates
// (which are noisy on shared cores). SIGUSR2 writes the counts so far to BENCH_QUERY_COUNTS.
'use strict';
const { writeFileSync } = require('node:fs');
const { Client } = require('pg');

const counts = new Map();
const query = Client.prototype.query;
Client.prototype.query = function (config, ...rest) {
  const text = typeof config === 'string' ? config : config && config.text;
  if (typeof text === 'string') {
    const shape = text.replace(/\s+/g, ' ').trim().slice(0, 90);
    counts.set(shape, (counts.get(shape) ?? 0) + 1);
  }
  return query.call(this, config, ...rest);
};
process.on('SIGUSR2', () => {
  if (process.env.BENCH_QUERY_COUNTS) {
    writeFileSync(process.env.BENCH_QUERY_COUNTS, JSON.stringify(Object.fromEntries(counts)));
  }
});
