/**
 * Writes one batch to the store at Deno.args[0], prints "written" once
 * `write` resolved, then hangs until killed: the crash test's writer.
 */
import { Counters } from "../../model/counters.ts";
import { emptyBatch } from "../../model/records.ts";
import { DuckDbStore } from "../store.ts";
import { httpRecord, span } from "./records.ts";

const store = await DuckDbStore.open(Deno.args[0]!, {
  agentId: "crash",
  counters: new Counters(),
});
const batch = emptyBatch();
for (let i = 0; i < 3000; i++) {
  batch.http.push(httpRecord(Date.now(), { counts: [i, 1, 0, 0] }));
  batch.spans.push(span(i + 1, 1));
}
await store.write(batch);
console.log("written");
await new Promise(() => setInterval(() => {}, 1000));
