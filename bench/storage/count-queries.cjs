// Preloaded into the storage process by bench/storage/delivery-path.mjs (node --require): counts every
// statement the process sends to Postgres, by the statement's kind, and writes the counts to
// $BENCH_QUERY_COUNTS_FILE on SIGUSR2. Not part of the service.
const { writeFileSync } = require('node:fs');
const pg = require('pg');

const counts = {};
const kind = (sql) => {
  const s = String(typeof sql === 'object' && sql !== null ? sql.text : sql)
    .replace(/\s+/g, ' ')
    .trim();
  const m =
    /^(START TRANSACTION|BEGIN|COMMIT|ROLLBACK|SELECT 1)\b/i.exec(s) ??
    /^(?:WITH \w+ AS \( ?)?(INSERT INTO [\w.]+|DELETE FROM [\w.]+|UPDATE [\w.]+)/i.exec(s) ??
    /^SELECT .*? FROM ([\w.]+)/i.exec(s);
  return m ? (m[0].startsWith('SELECT') && m[1] ? `SELECT ${m[1]}` : m[0]) : s.slice(0, 40);
};
const original = pg.Client.prototype.query;
pg.Client.prototype.query = function (sql, ...rest) {
  const k = kind(sql);
  counts[k] = (counts[k] ?? 0) + 1;
  return original.call(this, sql, ...rest);
};
process.on('SIGUSR2', () => {
  if (process.env.BENCH_QUERY_COUNTS_FILE)
    writeFileSync(process.env.BENCH_QUERY_COUNTS_FILE, JSON.stringify(counts));
});
