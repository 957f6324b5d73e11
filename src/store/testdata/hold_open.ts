/**
 * Opens the store at Deno.args[0] read-write, prints "ready", and holds it
 * until stdin closes: the other process of the lock test.
 */
import { Counters } from "../../model/counters.ts";
import { DuckDbStore } from "../store.ts";

const store = await DuckDbStore.open(Deno.args[0]!, {
  agentId: "holder",
  counters: new Counters(),
});
console.log("ready");
for await (const _ of Deno.stdin.readable) {
  // Wait for EOF.
}
await store.close();
