import { sql } from "kysely";
import { openTestStore } from "./test/helpers/store.js";
const t = await openTestStore("sqlite");
const now = 1_700_000_000_000;
const N = Number(process.argv[2] ?? 20000);
for (let i = 0; i < N; i += 2000) await t.store.db.insertInto("jobs").values(Array.from({ length: Math.min(2000, N - i) }, (_, k) => ({ id: `job_${String(i + k).padStart(7, "0")}`, org_id: "org_a", scope_id: "app_a", item_id: `msg_${i + k}`, destination_id: process.argv[3] === 'one' ? 'ep_0' : `ep_${(i + k) % 100}`, attempt: 0, trigger_type: 0, run_at: now - 100000 + i + k, locked_by: null, created_at: now, kind: "outbound" }))).execute();
const listed = Array.from({ length: 30 }, (_, i) => `'ep_${i}'`).join(",");
const due = `run_at <= ${now} and scope_id not in (select id from incident_pauses) and org_id not in (select id from incident_pauses)`;
const oldest = `select id, org_id, destination_id, run_at from jobs where ${due} order by run_at limit 2048`;
const qs: Record<string, string> = {
  bounded_waiting: `select * from (${oldest}) as oldest where destination_id not in (${listed}) limit 128`,
  bounded_active: `select * from (${oldest}) as oldest where destination_id in (${listed}) limit 128`,
  deep_waiting: `select id, org_id, destination_id, run_at from jobs where ${due} and destination_id not in (${listed}) order by run_at limit 128`,
};
for (const [name, q] of Object.entries(qs)) {
  const plan = (await sql.raw(`explain query plan ${q}`).execute(t.store.db)).rows.map((r: any) => r.detail).join(" | ");
  let tot = 0; const R = 50;
  for (let i = 0; i < R; i++) { const s = process.hrtime.bigint(); await sql.raw(q).execute(t.store.db); tot += Number(process.hrtime.bigint() - s); }
  console.log(name, (tot / R / 1000).toFixed(0), "µs |", plan);
}
await t.drop();
