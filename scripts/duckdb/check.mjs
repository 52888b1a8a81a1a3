// Reads each shard with DuckDB (an independent Parquet reader) and checks, against the schema
// that `cpo-shard schema` reports: every column present with the documented type, the cpo.*
// key/value metadata, and every value equal to what `cpo-shard to-jsonl` prints.
// Usage: node check.mjs SCHEMA FILE.parquet SCHEMA.json ROWS.jsonl
import { DuckDBInstance } from '@duckdb/node-api';
import { readFileSync } from 'node:fs';

const [schema, file, schemaJSON, rowsJSONL] = process.argv.slice(2);
const want = JSON.parse(readFileSync(schemaJSON, 'utf8'));
const rows = readFileSync(rowsJSONL, 'utf8').split('\n').filter(Boolean).map(JSON.parse);

// Our type names → DuckDB's.
function duck(t) {
  t = t.replace(' (nullable)', '');
  const scalar = { string: 'VARCHAR', int32: 'INTEGER', int64: 'BIGINT', float: 'FLOAT', double: 'DOUBLE', bool: 'BOOLEAN' };
  if (scalar[t]) return scalar[t];
  let m = t.match(/^list<(.*)>$/);
  if (m) return duck(m[1]) + '[]';
  m = t.match(/^struct<(.*)>$/);
  if (m) {
    const parts = [];
    let depth = 0, cur = '';
    for (const ch of m[1]) {
      if (ch === '<') depth++;
      if (ch === '>') depth--;
      if (ch === ',' && depth === 0) { parts.push(cur.trim()); cur = ''; continue; }
      cur += ch;
    }
    parts.push(cur.trim());
    return 'STRUCT(' + parts.map(p => { const [n, ...rest] = p.split(': '); return `${n} ${duck(rest.join(': '))}`; }).join(', ') + ')';
  }
  throw new Error('unknown type ' + t);
}

let failures = 0;
const fail = (msg) => { console.error(`FAIL ${schema}: ${msg}`); failures++; };

const inst = await DuckDBInstance.create(':memory:');
const con = await inst.connect();
const desc = (await con.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet('${file}')`)).getRowObjectsJson();
if (desc.length !== want.columns.length) fail(`${desc.length} columns, want ${want.columns.length}`);
want.columns.forEach((c, i) => {
  const d = desc[i] || {};
  if (d.column_name !== c.name) fail(`column ${i} is ${d.column_name}, want ${c.name}`);
  else if (d.column_type !== duck(c.type)) fail(`column ${c.name} has type ${d.column_type}, want ${duck(c.type)} (${c.type})`);
});
const meta = Object.fromEntries((await con.runAndReadAll(
  `SELECT decode(key) AS k, decode(value) AS v FROM parquet_kv_metadata('${file}')`)).getRowObjectsJson().map(r => [r.k, r.v]));
if (meta['cpo.schema'] !== schema) fail(`cpo.schema is ${meta['cpo.schema']}`);
if (meta['cpo.schema_version'] !== String(want.version)) fail(`cpo.schema_version is ${meta['cpo.schema_version']}`);

// Values: compare DuckDB's JSON rendering with cpo-shard's, numerically for numbers.
const got = (await con.runAndReadAll(`SELECT * FROM read_parquet('${file}')`)).getRowObjectsJson();
if (got.length !== rows.length) fail(`${got.length} rows, want ${rows.length}`);
function same(a, b) {
  if (a === null || a === undefined) return b === null || b === undefined || (Array.isArray(b) && b.length === 0);
  if (b === null || b === undefined) return Array.isArray(a) && a.length === 0;
  if (typeof b === 'number') return Math.abs(Number(a) - b) <= 1e-6 * Math.max(1, Math.abs(b));
  if (Array.isArray(b)) return Array.isArray(a) && a.length === b.length && b.every((x, i) => same(a[i], x));
  if (typeof b === 'object') return Object.keys(b).every(k => same(a[k], b[k]));
  return a === b;
}
rows.forEach((r, i) => {
  for (const k of Object.keys(r)) if (!same(got[i]?.[k], r[k])) fail(`row ${i} column ${k}: duckdb ${JSON.stringify(got[i]?.[k])}, cpo ${JSON.stringify(r[k])}`);
});
if (failures) process.exit(1);
console.log(`ok ${schema}: ${want.columns.length} columns, ${rows.length} rows read by DuckDB as documented`);
